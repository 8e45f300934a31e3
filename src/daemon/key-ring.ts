// The key file at the daemon's start, and the rule that keeps one key file for every daemon of a
// store. The key file never goes into the store; the store keeps only what tells whether a node's
// key file is the right one: who may create it, and the key ring's record (its key ids, the one
// that seals, and a fingerprint of its MAC seed).
//
// The file store belongs to one daemon: the key file is created at its first start (no mailbox,
// never created before), and a missing one later means lost keys.
//
// PostgreSQL: the first daemon to claim the store (atomically, through the meta port) may create
// the key file, and records the key ring; every other daemon must be given a copy. A daemon
// refuses to start (CONFIG_INVALID) when its key file is missing, lacks the key the record names
// current, or has another MAC seed (its keyed hashes would match nothing the others stored). While
// running, it seals with the key the record names current, read again every few seconds, so that
// a rotation made through any daemon moves every daemon to the new key; key add, rotate and
// retire update the record.
import { createHmac } from 'node:crypto';
import type { MemfaConfig } from '../config/types.js';
import { MemfaError } from '../protocol/errors.js';
import { TOTP_PURPOSE } from '../services/enrol.js';
import type { KeyAdmin, SecretBox } from '../services/ports.js';
import type { MailboxStore, MetaStore, SealedSecretSample, StoreBackend } from '../services/store-ports.js';
import { Keyring, secretAad } from '../security/keyring.js';
import type { Logger } from './logger.js';

/** Who may create the key file (the file store: when it was created). */
export const KEY_CREATED_KEY = 'keyringCreated';
/** The key ring's record in a shared store. */
export const KEY_RING_KEY = 'keyRing';
/** How often a daemon on a shared store reads which key seals. */
export const KEY_RECORD_REFRESH_MS = 2000;
/** How long a rotation waits, once the new key is recorded, for every daemon to seal with it. */
export const KEY_SWITCH_SETTLE_MS = 2.5 * KEY_RECORD_REFRESH_MS;

export interface KeyRingRecord {
  current: string;
  kids: string[];
  /** An HMAC under the key file's MAC seed: equal on every node with the same key file. */
  fingerprint: string;
}

type KeyState = MetaStore & Pick<MailboxStore, 'countMailboxes'> & SealedSecretSample;

export interface DaemonKeys {
  keyring: Keyring;
  secrets: SecretBox;
  keys: KeyAdmin;
  /** Stops reading the record (before the store closes). */
  stop(): void;
}

function fingerprint(keyring: Keyring): string {
  return createHmac('sha256', keyring.macKey('key-ring-fingerprint')).update('memfa key ring').digest('hex').slice(0, 32);
}

function recordOf(keyring: Keyring): KeyRingRecord {
  return { current: keyring.currentKid, kids: keyring.kids(), fingerprint: fingerprint(keyring) };
}

function isRecord(v: unknown): v is KeyRingRecord {
  const r = v as Partial<KeyRingRecord> | null;
  return typeof r === 'object' && r !== null && typeof r.current === 'string' && Array.isArray(r.kids) && typeof r.fingerprint === 'string';
}

const copyHint = (file: string, node: string | null) =>
  `copy ${file} from the node that created it${node === null ? '' : ` (node ${node})`}, with its owner and mode 0600: every daemon of the database uses the same key file`;

/**
 * Opens one stored secret per key id with the key file, so that a wrong or stale key file stops
 * the daemon at start instead of failing every login later. Never resets anything.
 */
async function checkSecretsOpen(sample: SealedSecretSample, keyring: Keyring, keyFile: string): Promise<void> {
  for (const { kid, address, sealedSecret } of await sample.sealedSecretPerKey()) {
    try {
      keyring.open(sealedSecret, secretAad(TOTP_PURPOSE, address));
    } catch {
      throw new MemfaError('CONFIG_INVALID', `the key file ${keyFile} cannot open the secrets in the store (key ${kid}); refusing to start`, {
        data: { file: keyFile },
        hint: 'restore the key file that belongs to this store; secrets are never reset automatically',
      });
    }
  }
}

function load(config: MemfaConfig, log: Logger, create: boolean, retired?: (kid: string) => boolean): Promise<Keyring> {
  return Keyring.load(config.keyFile, { create, onReread: (event) => log.info('key-file-reread', { file: config.keyFile, ...event }), ...(retired === undefined ? {} : { retired }) });
}

async function openFileKeys(config: MemfaConfig, state: KeyState, log: Logger): Promise<DaemonKeys> {
  // A key file is created only at the first start: later, a missing one means lost keys, and a
  // new one would make every stored secret unopenable.
  const created = await state.getMeta(KEY_CREATED_KEY);
  const keyring = await load(config, log, (await state.countMailboxes()) === 0 && created === undefined);
  await checkSecretsOpen(state, keyring, config.keyFile);
  if (created === undefined) await state.updateMeta(KEY_CREATED_KEY, (cur) => (cur === undefined ? { next: Date.now(), result: undefined } : { result: undefined }));
  return { keyring, secrets: keyring, keys: keyring, stop: () => undefined };
}

/** The key file of a daemon on a shared store (the rule above). */
async function openSharedKeys(config: MemfaConfig, state: KeyState, node: string, log: Logger): Promise<DaemonKeys> {
  const file = config.keyFile;
  const claim = await state.updateMeta<{ node?: unknown }, string | null>(KEY_CREATED_KEY, (cur) => {
    if (cur === undefined) return { next: { node, at: Date.now() }, result: node };
    return { result: typeof cur === 'object' && cur !== null && typeof cur.node === 'string' ? cur.node : null };
  });
  const recorded = await state.getMeta<unknown>(KEY_RING_KEY);
  const mayCreate = claim === node && recorded === undefined && (await state.countMailboxes()) === 0;
  // What the record says now (kept by sharedKeys): a key it no longer lists was retired through
  // another daemon, after every stored value was sealed again, and may leave this node's file.
  const known: { ring: KeyRingRecord | null } = { ring: isRecord(recorded) ? recorded : null };
  let keyring: Keyring;
  try {
    keyring = await load(config, log, mayCreate, (kid) => known.ring !== null && !known.ring.kids.includes(kid));
  } catch (err) {
    if (err instanceof MemfaError && err.message.endsWith('missing')) {
      throw new MemfaError('CONFIG_INVALID', `the key file ${file} is missing, and this node did not create the store's key file; refusing to start`, {
        data: { file, createdBy: claim },
        hint: copyHint(file, claim),
        cause: err,
      });
    }
    throw err;
  }
  const mine = recordOf(keyring);
  const ring = await state.updateMeta<unknown, unknown>(KEY_RING_KEY, (cur) => (cur === undefined ? { next: mine, result: mine } : { result: cur }));
  if (!isRecord(ring)) throw new MemfaError('STORE_CORRUPT', `the store's record of the key ring (${KEY_RING_KEY}) is not one`, { data: { key: KEY_RING_KEY } });
  if (ring.fingerprint !== mine.fingerprint) {
    throw new MemfaError('CONFIG_INVALID', `the key file ${file} is not the one of this store (another MAC seed); refusing to start`, { data: { file }, hint: copyHint(file, claim) });
  }
  if (!keyring.kids().includes(ring.current)) {
    throw new MemfaError('CONFIG_INVALID', `the key file ${file} lacks key ${ring.current}, which the store makes current; refusing to start`, {
      data: { file, kid: ring.current },
      hint: `copy ${file} from the node that ran memfa key add or rotate last`,
    });
  }
  await checkSecretsOpen(state, keyring, file);
  known.ring = ring;
  return sharedKeys(keyring, state, known, log);
}

/** The ring of a shared store: seals with the recorded current key, keeps the record true. */
function sharedKeys(keyring: Keyring, state: KeyState, known: { ring: KeyRingRecord | null }, log: Logger): DaemonKeys {
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
  const record = async () => {
    const mine = recordOf(keyring);
    await state.updateMeta(KEY_RING_KEY, () => ({ next: mine, result: undefined }));
    take(mine);
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
  return { keyring, secrets, keys, stop: () => clearInterval(refresh) };
}

/** The key file for `backend`, checked against what the store holds (the rule above). */
export function openKeys(config: MemfaConfig, backend: StoreBackend, state: KeyState, node: string, log: Logger): Promise<DaemonKeys> {
  return backend === 'file' ? openFileKeys(config, state, log) : openSharedKeys(config, state, node, log);
}
