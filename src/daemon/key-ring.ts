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
// current, or has another MAC seed (its keyed hashes would match nothing the others stored). What
// it does while running is shared-keys.ts'.
import type { MemfaConfig } from '../config/types.js';
import { MemfaError } from '../protocol/errors.js';
import { TOTP_PURPOSE } from '../services/enrol.js';
import type { MailboxStore, MetaStore, SealedSecretSample, StoreBackend } from '../services/store-ports.js';
import { Keyring, secretAad } from '../security/keyring.js';
import type { Logger } from './logger.js';
import { isRecord, KEY_RING_KEY, recordOf, sharedKeys, type DaemonKeys, type KeyRingRecord } from './shared-keys.js';

export type { DaemonKeys } from './shared-keys.js';

/** Who may create the key file (the file store: when it was created). */
export const KEY_CREATED_KEY = 'keyringCreated';
type KeyState = MetaStore & Pick<MailboxStore, 'countMailboxes'> & SealedSecretSample;

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
  return { keyring, secrets: keyring, keys: keyring, stop: async () => undefined };
}

/** The key file of a daemon on a shared store (the rule above). */
async function openSharedKeys(config: MemfaConfig, state: KeyState, node: string, now: () => number, log: Logger): Promise<DaemonKeys> {
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
  return sharedKeys({ keyring, state, known, node, now, log });
}

/** The key file for `backend`, checked against what the store holds (the rule above). */
export function openKeys(config: MemfaConfig, backend: StoreBackend, state: KeyState, node: string, now: () => number, log: Logger): Promise<DaemonKeys> {
  return backend === 'file' ? openFileKeys(config, state, log) : openSharedKeys(config, state, node, now, log);
}
