// One connection of a listener: takes its frames one at a time, hands each request to the handler
// and writes the answers, with back-pressure. While the peer is not reading its answers (a write
// found the socket's buffers full) or too many of its requests are in flight, nothing more is
// processed or read from it: the rest of the chunk in hand waits in the decoder, and whatever the
// peer sends after it waits in the kernel's socket buffer, both bounded.
import type net from 'node:net';
import { LineDecoder, encodeFrame } from '../protocol/framing.js';
import { classify, errorObject, type RpcResponse } from '../protocol/jsonrpc.js';
import { MemfaError } from '../protocol/errors.js';
import type { SocketKind } from '../protocol/methods.js';
import type { Logger } from './logger.js';

/** Answers a request: a value at once, or a promise of one; throws or rejects with a MemfaError. */
export type Handler = (method: string, params: unknown, socket: SocketKind) => unknown;

/** Requests of one connection answered asynchronously at a time; beyond that it is not read. */
export const MAX_IN_FLIGHT_PER_CONNECTION = 32;

/** The listener's state a connection reads on every request: kept in one object, read as fields. */
export interface ListenerState {
  /** The listener's coarse clock: sweeps so far (see Listener). */
  ticks: number;
  /** False once the daemon is stopping: requests are answered SHUTTING_DOWN. */
  accepting: boolean;
}

/** What a connection needs of its listener. */
export interface ConnectionHost {
  readonly kind: SocketKind;
  readonly maxFrameBytes: number;
  readonly state: ListenerState;
  readonly handle: Handler;
  readonly log: Logger;
  requestStarted(): void;
  requestFinished(): void;
}

export class Connection {
  /** Tick of the last request taken or answer written; bytes that complete no frame are not activity. */
  lastActive: number;
  /** Requests being answered asynchronously. */
  pending = 0;
  /** Tick at which the partial frame now buffered began; -1 if none, or while not reading. */
  partialSince = -1;
  private readonly decoder: LineDecoder;
  /** A write found the socket's buffers full: the peer is not keeping up with its answers. */
  private outputBlocked = false;
  private paused = false;
  /**
   * Set once the connection is refused (oversize frame): whatever the peer still sends is ignored,
   * so that a request after the refused frame can never run on a connection being closed.
   */
  private refused = false;

  constructor(
    readonly socket: net.Socket,
    private readonly host: ConnectionHost,
  ) {
    this.lastActive = host.state.ticks;
    this.decoder = new LineDecoder(host.maxFrameBytes);
    socket.on('data', (chunk: Buffer) => {
      if (this.refused) return;
      this.decoder.feed(chunk);
      this.run();
    });
    socket.on('drain', () => {
      this.outputBlocked = false;
      this.run();
    });
    // Accepted paused (the listener may have kept it waiting for a slot): reading starts now.
    socket.resume();
  }

  /** Takes frames until the chunk in hand is used up (then reads on) or the connection must wait. */
  private run(): void {
    // A connection closed meanwhile runs nothing more: nobody would get the answers.
    while (!this.refused && !this.socket.destroyed) {
      if (this.outputBlocked || this.pending >= MAX_IN_FLIGHT_PER_CONNECTION) return this.stopReading();
      const frame = this.decoder.next();
      if (frame === null) return this.readOn();
      if (frame.kind === 'oversize') return this.refuse(frame.bytes);
      this.lastActive = this.host.state.ticks;
      this.partialSince = -1;
      this.take(frame.line);
    }
  }

  private stopReading(): void {
    // Not reading, a frame that stays partial is not the peer's delay: its deadline restarts later.
    this.partialSince = -1;
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private readOn(): void {
    if (!this.decoder.hasPartial) this.partialSince = -1;
    else if (this.partialSince < 0) this.partialSince = this.host.state.ticks;
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private refuse(bytes: number): void {
    this.refused = true;
    const err = new MemfaError('FRAME_TOO_LARGE', `message larger than ${this.host.maxFrameBytes} bytes; closing the connection`);
    if (!this.socket.destroyed) this.socket.end(encodeFrame({ jsonrpc: '2.0', id: null, error: errorObject(err) }));
    this.host.log.warn('frame-too-large', { socket: this.host.kind, bytes });
  }

  private send(response: RpcResponse): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    this.lastActive = this.host.state.ticks;
    // false: the kernel's buffer is full and Node's (writableHighWaterMark) too; 'drain' follows.
    if (!socket.write(encodeFrame(response))) this.outputBlocked = true;
  }

  private take(line: string): void {
    const incoming = classify(line);
    if (incoming.kind === 'invalid') return this.send({ jsonrpc: '2.0', id: incoming.id, error: errorObject(incoming.error) });
    const { request, notification } = incoming;
    if (!this.host.state.accepting) {
      if (!notification) this.send({ jsonrpc: '2.0', id: request.id, error: errorObject(new MemfaError('SHUTTING_DOWN', 'the daemon is stopping; retry shortly')) });
      return;
    }
    let answer: unknown;
    try {
      answer = this.host.handle(request.method, request.params, this.host.kind);
    } catch (err) {
      if (!notification) this.send({ jsonrpc: '2.0', id: request.id, error: errorObject(err as MemfaError) });
      return;
    }
    if (!(answer instanceof Promise)) {
      if (!notification) this.send({ jsonrpc: '2.0', id: request.id, result: answer });
      return;
    }
    this.pending++;
    this.host.requestStarted();
    answer
      .then(
        (result) => {
          if (!notification) this.send({ jsonrpc: '2.0', id: request.id, result });
        },
        (err: unknown) => {
          if (!notification) this.send({ jsonrpc: '2.0', id: request.id, error: errorObject(err as MemfaError) });
        },
      )
      .finally(() => {
        this.pending--;
        this.host.requestFinished();
        if (this.paused) this.run();
      });
  }
}
