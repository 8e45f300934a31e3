// The ports services depend on. The daemon wires real implementations in; tests may wire others.
import type { MemfaConfig } from '../config/types.js';
import type { CountryLookup } from '../geo/country.js';
import type { Logger } from '../daemon/logger.js';
import type { Store } from '../store/types.js';
import type { AuditActor, AuditEvent } from '../audit/entry.js';
import type { Sender } from '../delivery/types.js';
import type { SocketKind } from '../protocol/methods.js';
import type { AuditEntryView, AuditStatus, AuditVerifyResult } from '../protocol/results.js';
import type { CodeProvider } from '../protocol/vocabulary.js';
import type { StatePorts } from './store-ports.js';

export interface SecretBox {
  seal(plaintext: Buffer, aad: string): string;
  open(sealed: string, aad: string): Buffer;
  /** A stable key for keyed hashes of `purpose` (codes, recovery codes, tokens). */
  macKey(purpose: string): Buffer;
}

/** Key administration: rotation without downtime (see security/rotation.ts). */
export interface KeyAdmin {
  readonly currentKid: string;
  /** Oldest first. */
  kids(): string[];
  /** Adds a key that is not current yet; returns its kid. */
  add(): Promise<string>;
  /** Makes the added key, or a fresh one, current; returns its kid. */
  rotate(): Promise<string>;
  retire(kid: string): Promise<void>;
  needsReseal(sealed: string): boolean;
  reseal(sealed: string, aad: string): string;
}

export interface AuditReader {
  /** domains: only entries whose mailbox is in one of them (never an entry of no mailbox). */
  query(filter: { mailbox?: string; domains?: readonly string[]; since?: Date; until?: Date; result?: string; action?: string; limit?: number }): Promise<AuditEntryView[]>;
  verify(): Promise<AuditVerifyResult>;
  /** Lines written, lost writes and breaks found, per stream. */
  status(): AuditStatus;
}

export interface Random {
  bytes(n: number): Buffer;
  int(min: number, max: number): number;
}

export interface AuditSink {
  /** Records an event; resolves once it is written. Never rejects: a failure is logged. */
  append(event: AuditEvent): Promise<unknown>;
  /** Records an event without waiting for the disk; a failure is logged. */
  record(event: AuditEvent): void;
  /**
   * Records a fast-path allow (no factor needed), or a login.check allow or continue, without
   * waiting: such answers may be counted into one line per mailbox, client address, action,
   * result and reason per minute. Nothing else may go through here.
   */
  recordAllow(event: AuditEvent): void;
}

export interface Ports {
  config: MemfaConfig;
  /** The synchronous store, for what is not yet on the state ports (administration). */
  store: Store;
  /** The use cases' state (store-ports.ts); every check-then-act of a login goes through it. */
  state: StatePorts;
  clock: () => number;
  random: Random;
  country: CountryLookup;
  secrets: SecretBox;
  audit: AuditSink & AuditReader;
  keys: KeyAdmin;
  log: Logger;
  /** Configured code senders; a provider without one cannot deliver. */
  senders: Partial<Record<CodeProvider, Sender>>;
  startedAt: number;
  version: string;
}

/** Who is calling and through which socket; services use it for rights and the audit trail. */
export interface CallContext {
  socket: SocketKind;
  actor: AuditActor;
  /** Set for a domain administrator: the domains the token grants. Absent: the platform administrator. */
  scope?: { admin: string; domains: string[] };
}
