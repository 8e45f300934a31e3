// The key ring of a daemon on a shared store (PostgreSQL), while it runs. The store records the
// key ring (KEY_RING_KEY: its key ids, the one that seals, a fingerprint of the MAC seed; no key)
// and which key ids each running daemon holds (KEY_HOLDERS_KEY, renewed every
// KEY_HOLDER_BEAT_MS). Each daemon
//   - seals with the key the record names current, read again every KEY_RECORD_REFRESH_MS,
//     whatever its own file names (lacking it: security/keyring.ts sealWith refuses);
//   - looks at its key file at every beat, so that a copy installed on its host is taken within
//     one beat, and says in the store which key ids it holds;
//   - refuses a rotation (CONFLICT) while a running daemon lacks the key it would make current,
//     or when there is no key added to make current and other daemons run (a fresh key would be
//     on this node only);
//   - after recording a new current key, waits until every daemon has read it before the re-seal
//     starts (KEY_SWITCH_SETTLE_MS), so that nothing is sealed behind the sweep under the old key.
import { createHmac } from 'node:crypto';
import { MemfaError } from '../protocol/errors.js';
import type { KeyAdmin, SecretBox } from '../services/ports.js';
import type { MetaStore } from '../services/store-ports.js';
import type { Keyring } from '../security/keyring.js';
import type { Logger } from './logger.js';

/** The key ring's record in a shared store. */
export const KEY_RING_KEY = 'keyRing';
/** Which key ids each running daemon holds: node id -> { kids, at }. */
export const KEY_HOLDERS_KEY = 'keyHolders';
/** How often a daemon on a shared store reads which key seals. */
export const KEY_RECORD_REFRESH_MS = 1000;
/** How long a rotation waits, once the new key is recorded, for every daemon to seal with it. */
export const KEY_SWITCH_SETTLE_MS = 2.5 * KEY_RECORD_REFRESH_MS;
/** How often a daemon looks at its key file and says which key ids it holds. */
export const KEY_HOLDER_BEAT_MS = 2000;
/**
 * A daemon not heard of for this long is not running (it died without a word): its entry is ignored.
 * Several beats, so that a daemon stalled for a few seconds (a busy host) still counts as running.
 */
export const KEY_HOLDER_LIVE_MS = 15_000;
/** An entry older than this is dropped. */
const KEY_HOLDER_FORGET_MS = 24 * 3600_000;

export interface KeyRingRecord {
  current: string;
  kids: string[];
  /** An HMAC under the key file's MAC seed: equal on every node with the same key file. */
  fingerprint: string;
}

type Holders = Record<string, { kids: string[]; at: number }>;

export interface DaemonKeys {
  keyring: Keyring;
  secrets: SecretBox;
  keys: KeyAdmin;
  /** Stops reading the record and says this daemon holds nothing any more (before the store closes). */
  stop(): Promise<void>;
}

function fingerprint(keyring: Keyring): string {
  return createHmac('sha256', keyring.macKey('key-ring-fingerprint')).update('memfa key ring').digest('hex').slice(0, 32);
}

export function recordOf(keyring: Keyring): KeyRingRecord {
  return { current: keyring.currentKid, kids: keyring.kids(), fingerprint: fingerprint(keyring) };
}

export function isRecord(v: unknown): v is KeyRingRecord {
  const r = v as Partial<KeyRingRecord> | null;
  return typeof r === 'object' && r !== null && typeof r.current === 'string' && Array.isArray(r.kids) && typeof r.fingerprint === 'string';
}

function holdersOf(v: unknown): Holders {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Holders) : {};
}

/** The key `keyring.rotate()` would make current: the newest added after the current one, or none (a fresh one). */
function nextKid(keyring: Keyring): string | undefined {
  const kids = keyring.kids();
  return kids.slice(kids.indexOf(keyring.currentKid) + 1).at(-1);
}

export interface SharedKeysPorts {
  keyring: Keyring;
  state: MetaStore;
  /** What this daemon last read of the record (key-ring.ts gives it to the key ring's `retired`). */
  known: { ring: KeyRingRecord | null };
  node: string;
  now: () => number;
  log: Logger;
}

export function sharedKeys(p: SharedKeysPorts): DaemonKeys {
  const { keyring, state, known, node, now, log } = p;
  let sealing = known.ring!.current;
  const take = (ring: unknown) => {
    if (!isRecord(ring)) return;
    known.ring = ring;
    if (ring.current === sealing) return;
    log.info('key-current-changed', { previous: sealing, current: ring.current, holds: keyring.kids().includes(ring.current) });
    sealing = ring.current;
  };
  const refresh = setInterval(() => {
    state.getMeta<unknown>(KEY_RING_KEY).then(take, (err: Error) => log.debug('key-record-unread', { error: err.message }));
  }, KEY_RECORD_REFRESH_MS);
  refresh.unref();

  const beat = async (kids: string[] | null) => {
    const at = now();
    await state.updateMeta<unknown, undefined>(KEY_HOLDERS_KEY, (cur) => {
      const next: Holders = {};
      for (const [n, h] of Object.entries(holdersOf(cur))) if (n !== node && at - h.at < KEY_HOLDER_FORGET_MS) next[n] = h;
      if (kids !== null) next[node] = { kids, at };
      return { next, result: undefined };
    });
  };
  const look = () => {
    try {
      keyring.reread();
    } catch (err) {
      log.error('key-file-not-taken', { file: keyring.path, error: (err as Error).message });
    }
    return beat(keyring.kids());
  };
  const beating = setInterval(() => {
    look().catch((err: Error) => log.debug('key-holders-unwritten', { error: err.message }));
  }, KEY_HOLDER_BEAT_MS);
  beating.unref();
  const started = look().catch((err: Error) => log.warn('key-holders-unwritten', { error: err.message }));

  const record = async () => {
    const mine = recordOf(keyring);
    await state.updateMeta(KEY_RING_KEY, () => ({ next: mine, result: undefined }));
    take(mine);
    await beat(keyring.kids());
  };
  /** CONFLICT unless every other running daemon holds `kid` (undefined: a fresh key, held by none). */
  const assertHeldEverywhere = async (kid: string | undefined) => {
    const at = now();
    const others = Object.entries(holdersOf(await state.getMeta<unknown>(KEY_HOLDERS_KEY))).filter(([n, h]) => n !== node && at - h.at < KEY_HOLDER_LIVE_MS);
    const lacking = others.filter(([, h]) => kid === undefined || !h.kids.includes(kid)).map(([n]) => n);
    if (lacking.length === 0) return;
    if (kid === undefined) {
      throw new MemfaError('CONFLICT', `no key was added to make current, and other daemons run on this store (nodes ${lacking.join(', ')}): a fresh key would be in this node's key file only`, {
        data: { nodes: lacking },
        hint: 'run memfa key add, copy the key file to every node, then memfa key rotate',
      });
    }
    throw new MemfaError('CONFLICT', `key ${kid} is not in the key file of every running daemon (nodes ${lacking.join(', ')} lack it); nothing was changed`, {
      data: { kid, nodes: lacking },
      hint: `copy ${keyring.path} from this node to those; each takes it within ${KEY_HOLDER_BEAT_MS / 1000} s`,
    });
  };

  const secrets: SecretBox = {
    seal: (plaintext, aad) => keyring.sealWith(sealing, plaintext, aad),
    open: (sealed, aad) => keyring.open(sealed, aad),
    macKey: (purpose) => keyring.macKey(purpose),
  };
  const keys: KeyAdmin = {
    get currentKid() {
      return sealing;
    },
    kids: () => keyring.kids(),
    async add() {
      const kid = await keyring.add();
      await record();
      return kid;
    },
    async rotate() {
      keyring.reread();
      await assertHeldEverywhere(nextKid(keyring));
      const kid = await keyring.rotate();
      await record();
      // Every daemon reads the record within KEY_RECORD_REFRESH_MS: what they seal from then on
      // is under the new key, so the re-seal that follows leaves nothing behind under the old one.
      await new Promise((r) => setTimeout(r, KEY_SWITCH_SETTLE_MS));
      return kid;
    },
    async retire(kid) {
      await keyring.retire(kid);
      await record();
    },
    needsReseal: (sealed) => keyring.needsReseal(sealed),
    reseal: (sealed, aad) => keyring.reseal(sealed, aad),
  };
  const stop = async () => {
    clearInterval(refresh);
    clearInterval(beating);
    await started;
    await beat(null).catch((err: Error) => log.debug('key-holders-unwritten', { error: err.message }));
  };
  return { keyring, secrets, keys, stop };
}
