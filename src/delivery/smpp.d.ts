// smpp@0.5.1 ships no types. This declares only what memfa uses (the sender in sms.ts and the
// test gateway), as read from node_modules/smpp/lib/smpp.js, pdu.js and defs.js.

declare module 'smpp' {
  import { EventEmitter } from 'node:events';
  import type { Server as NetServer, Socket } from 'node:net';

  namespace smpp {
    /**
     * A decoded or to-be-sent PDU. Parameters are plain properties named as in the SMPP
     * specification; which ones exist depends on `command`.
     */
    interface PDU {
      command: string;
      command_id: number;
      command_status: number;
      sequence_number: number;
      isResponse(): boolean;
      /** The matching *_resp (generic_nack for an unknown command). */
      response(params?: PduParams): PDU;
      [param: string]: unknown;
    }

    /**
     * Parameters of a PDU. A short_message / message_payload string is encoded by the library
     * (picking data_coding when it is null); a Buffer is sent as is. Decoded on receipt into
     * `{ message: string }` by data_coding.
     */
    type PduParams = Record<string, unknown>;

    type ResponseCallback = (pdu: PDU) => void;

    interface ConnectOptions {
      host: string;
      port: number;
      /** Use tls.connect; the whole object is handed to net.connect / tls.connect. */
      tls?: boolean;
      rejectUnauthorized?: boolean;
      servername?: string;
      /** The library's own keep-alive; memfa runs its own so it can notice missing answers. */
      auto_enquire_link_period?: number;
    }

    /**
     * One connection. Emits 'connect' (TCP), 'secureConnect' (TLS), 'close', 'error' (followed by
     * 'close'; without a listener it crashes the process), 'pdu', 'unknown' and one event per
     * received command name ('enquire_link', 'deliver_sm', 'unbind', ...).
     * A response callback is never called if the connection closes first.
     */
    class Session extends EventEmitter {
      socket: Socket;
      /** false when the socket is not writable (nothing was sent, the callback will not run). */
      send(pdu: PDU, responseCallback?: ResponseCallback, sendCallback?: (pdu: PDU) => void): boolean;
      bind_transmitter(params: PduParams, responseCallback?: ResponseCallback): boolean;
      bind_transceiver(params: PduParams, responseCallback?: ResponseCallback): boolean;
      submit_sm(params: PduParams, responseCallback?: ResponseCallback): boolean;
      deliver_sm(params: PduParams, responseCallback?: ResponseCallback): boolean;
      enquire_link(params: PduParams, responseCallback?: ResponseCallback): boolean;
      unbind(params: PduParams, responseCallback?: ResponseCallback): boolean;
      pause(): void;
      resume(): void;
      /** Ends the socket gracefully. */
      close(callback?: () => void): void;
      destroy(callback?: () => void): void;
    }

    class Server extends NetServer {
      /** Open sessions; a session leaves the list when its socket closes. */
      sessions: Session[];
    }

    interface ServerOptions {
      key?: string | Buffer;
      cert?: string | Buffer;
    }

    function connect(options: ConnectOptions, listener?: () => void): Session;
    function createServer(options: ServerOptions, sessionListener?: (session: Session) => void): Server;
    function createServer(sessionListener?: (session: Session) => void): Server;

    /** command_status names (ESME_R*) to values. */
    const errors: Readonly<Record<string, number>>;

    /** GSM 03.38 (unpacked, one septet per byte, extension characters as ESC + char). */
    const encodings: {
      readonly ASCII: { encode(text: string): Buffer; decode(bytes: Buffer): string };
    };
  }

  export = smpp;
}
