// A real SMPP gateway (smpp.createServer) on 127.0.0.1 for delivery tests. It can be stopped and
// started again on the same port, to test re-binding.

import type { AddressInfo } from 'node:net';
import smpp from 'smpp';
import getTLSOptions from 'smtp-server/lib/tls-options.js';

export interface SubmittedSms {
  systemId: string;
  sourceAddr: string;
  sourceTon: number;
  sourceNpi: number;
  destinationAddr: string;
  destTon: number;
  destNpi: number;
  dataCoding: number;
  text: string;
  /** 'short_message' or 'message_payload', whichever carried the text. */
  field: string;
}

export interface SmppSinkOptions {
  port?: number;
  /** Credentials a bind must present; any bind succeeds when unset. */
  systemId?: string;
  password?: string;
  /** Serve TLS with smtp-server's built-in self-signed test certificate. */
  tls?: boolean;
}

export class SmppSink {
  port = 0;
  readonly submitted: SubmittedSms[] = [];
  readonly binds: Array<{ command: string; systemId: string; interfaceVersion: number }> = [];
  enquireLinks = 0;
  unbinds = 0;
  /** command_status for the next submit_sm_resp (0: accepted). */
  submitStatus = 0;
  /** false: swallow submit_sm without answering, to test the submit timeout. */
  answerSubmits = true;
  /** false: swallow enquire_link without answering, as a gateway that hangs would. */
  answerEnquireLinks = true;
  private server: smpp.Server | null = null;
  private nextId = 1;

  constructor(private readonly options: SmppSinkOptions = {}) {
    if (options.port !== undefined) this.port = options.port;
  }

  get sessionCount(): number {
    return this.server?.sessions.length ?? 0;
  }

  /** The gateway's side of each open connection, to send requests to the client. */
  get sessions(): smpp.Session[] {
    return [...(this.server?.sessions ?? [])];
  }

  async start(): Promise<void> {
    if (this.server !== null) return;
    const listener = (session: smpp.Session): void => this.handle(session);
    let server: smpp.Server;
    if (this.options.tls === true) {
      const { key, cert } = getTLSOptions();
      server = smpp.createServer({ key: key as string | Buffer, cert: cert as string | Buffer }, listener);
    } else {
      server = smpp.createServer(listener);
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Drops every session (as a crashing gateway would) and stops listening. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    for (const session of [...server.sessions]) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(session: smpp.Session): void {
    session.on('error', () => {
      // Clients that vanish reset the connection; not a test failure by itself.
    });
    let systemId = '';
    const onBind = (pdu: smpp.PDU): void => {
      systemId = String(pdu.system_id);
      this.binds.push({ command: pdu.command, systemId, interfaceVersion: Number(pdu.interface_version) });
      const { systemId: wantId, password: wantPassword } = this.options;
      const ok = (wantId === undefined || wantId === pdu.system_id) && (wantPassword === undefined || wantPassword === pdu.password);
      session.send(pdu.response(ok ? { system_id: 'sink' } : { command_status: smpp.errors.ESME_RINVPASWD }));
      if (!ok) session.close();
    };
    session.on('bind_transmitter', onBind);
    session.on('bind_transceiver', onBind);
    session.on('enquire_link', (pdu: smpp.PDU) => {
      this.enquireLinks += 1;
      if (this.answerEnquireLinks) session.send(pdu.response());
    });
    session.on('unbind', (pdu: smpp.PDU) => {
      this.unbinds += 1;
      session.send(pdu.response());
      session.close();
    });
    session.on('submit_sm', (pdu: smpp.PDU) => {
      const field = pdu.message_payload !== undefined ? 'message_payload' : 'short_message';
      this.submitted.push({
        systemId,
        sourceAddr: String(pdu.source_addr),
        sourceTon: Number(pdu.source_addr_ton),
        sourceNpi: Number(pdu.source_addr_npi),
        destinationAddr: String(pdu.destination_addr),
        destTon: Number(pdu.dest_addr_ton),
        destNpi: Number(pdu.dest_addr_npi),
        dataCoding: Number(pdu.data_coding),
        text: decodeText(pdu[field], Number(pdu.data_coding)),
        field,
      });
      if (!this.answerSubmits) return;
      if (this.submitStatus !== 0) {
        session.send(pdu.response({ command_status: this.submitStatus }));
        return;
      }
      session.send(pdu.response({ message_id: `sink-${this.nextId++}` }));
    });
  }
}

// The library decodes by data_coding into { message }, but reads 1 (IA5) as GSM; memfa sends
// 1 as plain ASCII, so that case is decoded from the bytes here.
function decodeText(value: unknown, dataCoding: number): string {
  const message = (value as { message?: unknown } | undefined)?.message ?? value;
  if (dataCoding === 1 && typeof message === 'string') return Buffer.from(smpp.encodings.ASCII.encode(message)).toString('ascii');
  if (typeof message === 'string') return message;
  if (Buffer.isBuffer(message)) return message.toString('latin1');
  return '';
}

export async function startSmppSink(options: SmppSinkOptions = {}): Promise<SmppSink> {
  const sink = new SmppSink(options);
  await sink.start();
  return sink;
}
