// The services in process, over in-memory ports: the state ports of the file store over a store
// kept in memory (memory-store.ts), a clock the test moves, a key ring of one key, an email
// sender that keeps what it was given, and an audit trail and a log that keep their lines. No
// daemon, no socket, no file: a service test sets the time and the state and calls a method as the
// dispatcher does (parameters already validated by the protocol's schema).
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import type { AuditEvent } from '../../src/audit/entry.js';
import { validateConfig } from '../../src/config/load.js';
import type { MemfaConfig } from '../../src/config/types.js';
import { totpCode } from '../../src/core/totp.js';
import { newMailbox, type MailboxRecord } from '../../src/core/model.js';
import type { OutgoingCode, Sender } from '../../src/delivery/types.js';
import type { ParamsOf, ResultOf } from '../../src/protocol/methods.js';
import { keyedHasher } from '../../src/security/hash.js';
import { openWith, parseSealed, secretAad, sealWith } from '../../src/security/seal.js';
import { createServices, type ServiceHandlers } from '../../src/services/handlers.js';
import { TOTP_PURPOSE } from '../../src/services/enrol.js';
import type { CallContext, Ports, SecretBox } from '../../src/services/ports.js';
import { totpOptions } from '../../src/services/context.js';
import { FileStatePorts } from '../../src/store/state-ports.js';
import { MemoryStore } from './memory-store.js';

export const T0 = Date.UTC(2026, 2, 2, 8, 0, 0);

export const HOOK: CallContext = { socket: 'hook', actor: 'hook' };
export const ADMIN: CallContext = { socket: 'admin', actor: 'admin' };
export const SELF: CallContext = { socket: 'self', actor: 'self' };

/** A key ring of one key: seals as the daemon's does, and derives one MAC key per purpose. */
function oneKeySecrets(): SecretBox {
  const key = randomBytes(32);
  const seed = randomBytes(32);
  return {
    seal: (plaintext, aad) => sealWith('k1', key, plaintext, aad),
    open: (sealed, aad) => openWith(parseSealed(sealed), key, aad),
    macKey: (purpose) => createHmac('sha256', seed).update(purpose).digest(),
  };
}

/** An email sender that keeps every message; `failing` makes sends reject as a gateway down. */
export class KeptSender implements Sender {
  readonly provider = 'email' as const;
  readonly transport = 'kept';
  readonly sent: OutgoingCode[] = [];
  failing = false;

  send(msg: OutgoingCode): Promise<{ messageId: string }> {
    if (this.failing) return Promise.reject(new Error('gateway down'));
    this.sent.push(msg);
    return Promise.resolve({ messageId: String(this.sent.length) });
  }

  check(): Promise<{ ok: true }> {
    return Promise.resolve({ ok: true });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** The code of the last message sent. */
  get lastCode(): string {
    const code = this.sent.at(-1)?.code;
    if (code === undefined) throw new Error('no code was sent');
    return code;
  }
}

export interface ServiceRig {
  config: MemfaConfig;
  store: MemoryStore;
  state: FileStatePorts;
  clock: { now: number };
  email: KeptSender;
  audit: AuditEvent[];
  warnings: string[];
  handlers: ServiceHandlers;
  call<M extends keyof ServiceHandlers>(method: M, params: ParamsOf<M>, ctx?: CallContext): Promise<ResultOf<M>>;
  /** Stores `rec` as it is. */
  seed(rec: MailboxRecord): Promise<void>;
  mailbox(address: string): MailboxRecord | undefined;
  /** A mailbox with an active TOTP secret; returns the secret, to compute its codes with. */
  enrolled(address: string, extra?: Partial<MailboxRecord>): Promise<Buffer>;
  /** The code of `key` at the rig's time, or `offsetSteps` periods away. */
  totp(key: Buffer, offsetSteps?: number): string;
  close(): Promise<void>;
}

/** The services over in-memory ports. `raw`: configuration keys over the documented defaults. */
export function serviceRig(raw: Record<string, unknown> = {}): ServiceRig {
  const config = validateConfig({ ...raw, providers: { email: { enabled: true }, ...(raw['providers'] as object | undefined) } }, '/test/memfa.json', {}, {});
  const store = new MemoryStore();
  const state = new FileStatePorts(store);
  const clock = { now: T0 };
  const email = new KeptSender();
  const audit: AuditEvent[] = [];
  const warnings: string[] = [];
  const secrets = oneKeySecrets();
  const keep = (e: AuditEvent) => void audit.push(e);
  const ports: Ports = {
    config,
    storeFacts: { backend: 'file', location: '(memory)' },
    state,
    clock: () => clock.now,
    random: { bytes: (n) => randomBytes(n), int: (min, max) => randomInt(min, max) },
    // Documentation addresses: 192.0.2.0/24 is in Germany, 198.51.100.0/24 in France, the rest unknown.
    country: (ip) => (ip.startsWith('192.0.2.') ? 'DE' : ip.startsWith('198.51.100.') ? 'FR' : null),
    secrets,
    hashes: keyedHasher((purpose) => secrets.macKey(purpose)),
    audit: {
      append: (e) => Promise.resolve(keep(e)),
      record: keep,
      recordAllow: keep,
      query: () => Promise.resolve([]),
      verify: () => Promise.reject(new Error('not in a service test')),
      status: () => {
        throw new Error('not in a service test');
      },
    },
    keys: {
      currentKid: 'k1',
      kids: () => ['k1'],
      add: () => Promise.reject(new Error('not in a service test')),
      rotate: () => Promise.reject(new Error('not in a service test')),
      retire: () => Promise.reject(new Error('not in a service test')),
      needsReseal: () => false,
      reseal: (s) => s,
    },
    log: { debug: () => undefined, info: () => undefined, notice: () => undefined, warn: (event) => void warnings.push(event), error: (event) => void warnings.push(event) },
    senders: { email },
    startedAt: T0,
    version: 'test',
  };
  const services = createServices(ports);
  const rig: ServiceRig = {
    config,
    store,
    state,
    clock,
    email,
    audit,
    warnings,
    handlers: services.handlers,
    async call(method, params, ctx = HOOK) {
      const handler = services.handlers[method] as (p: unknown, c: CallContext) => unknown;
      return (await handler(params, ctx)) as never;
    },
    seed: (rec) => state.updateMailbox(rec.address, () => ({ next: rec, result: undefined })),
    mailbox: (address) => store.getMailbox(address),
    async enrolled(address, extra = {}) {
      const key = randomBytes(20);
      await rig.seed({
        ...newMailbox(address, clock.now),
        totp: { sealedSecret: secrets.seal(key, secretAad(TOTP_PURPOSE, address)), activatedAt: clock.now, lastAcceptedStep: null },
        ...extra,
      });
      return key;
    },
    totp: (key, offsetSteps = 0) => totpCode(key, clock.now + offsetSteps * config.totp.period * 1000, totpOptions(config)),
    close: () => services.close(),
  };
  return rig;
}
