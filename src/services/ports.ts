// The ports services depend on besides the state's (store-ports.ts): time, randomness, secrets,
// the audit trail, the log, the gateways. Each service names the ones it uses in its own ports
// interface and receives only those; `Ports` is what the daemon hands over to wire them all
// (handlers.ts). Tests wire in-memory ones.
import type { MemfaConfig } from '../config/types.js';
import type { CountryLookup } from '../geo/country.js';
import type { AuditActor, AuditEvent } from '../audit/entry.js';
import type { NoticeSender, Sender } from '../delivery/types.js';
import type { PendingNotice } from '../core/notices.js';
import type { SocketKind } from '../protocol/methods.js';
import type { AuditEntryView, AuditStatus, AuditVerifyResult } from '../protocol/results.js';
import type { CodeProvider } from '../protocol/vocabulary.js';
import type { StatePorts, StoreFacts } from './store-ports.js';

/** The time now, in milliseconds since the epoch: the daemon's clock, or a test's. */
export type Clock = () => number;

/** One structured line per event (the daemon's logger, daemon/logger.ts). Never a secret in the fields. */
export interface Log {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  /** A security event (security-log.ts): at syslog's notice level, for fail2ban. */
  notice(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

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

/**
 * Keyed hashes of values that are checked but never stored (tokens, app passwords), under the key
 * ring's stable key of `purpose` (security/hash.ts keyedHasher): the keys never reach a service.
 * `scope` binds a hash to its owner (an app password to its mailbox).
 */
export interface KeyedHashes {
  hash(purpose: string, value: string, scope?: string): string;
  /** Whether `stored` is the hash of `value`; constant time in the value. */
  verify(purpose: string, value: string, stored: string, scope?: string): boolean;
  /** The index of the first of `stored` that is the hash of `value`, or -1: one hash, every entry compared. */
  indexOf(purpose: string, value: string, stored: readonly string[], scope?: string): number;
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

/**
 * Where security notices go out (services/notify.ts): the SMTP gateway, and the text of a notice
 * (delivery/notice.ts, from the configured templates), which the daemon wires in.
 */
export interface NoticeOutlet {
  sender: NoticeSender;
  render(notice: PendingNotice, mailbox: string): { subject: string; text: string };
}

/** Everything the daemon wires in; handlers.ts gives each service its part. */
export interface Ports {
  config: MemfaConfig;
  /** The state, as the services use it (store-ports.ts). */
  state: StatePorts;
  /** Which store the state is kept in, for status. */
  storeFacts: Pick<StoreFacts, 'backend' | 'location'>;
  clock: Clock;
  random: Random;
  country: CountryLookup;
  secrets: SecretBox;
  hashes: KeyedHashes;
  audit: AuditSink & AuditReader;
  keys: KeyAdmin;
  log: Log;
  /** Configured code senders; a provider without one cannot deliver. */
  senders: Partial<Record<CodeProvider, Sender>>;
  /** Where security notices go out (the SMTP gateway) and their text; absent: none can be sent. */
  notices?: NoticeOutlet;
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
