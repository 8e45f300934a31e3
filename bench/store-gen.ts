// Generates a memfa store directly on disk, before the daemon's first start: a key file (created
// with memfa's own keyring module, as the daemon would) and a snapshot holding every mailbox with
// an active TOTP secret sealed under that key. Writing the file is far faster than enrolling
// 100,000 mailboxes through the socket, and it is the same format the daemon writes.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LevelSettings, MailboxRecord } from '../src/core/model.js';
import { newMailbox } from '../src/core/model.js';
import { Keyring, secretAad } from '../src/security/keyring.js';
import { TOTP_PURPOSE } from '../src/services/enrol.js';
import { CURRENT_SCHEMA, snapshotJson, type Snapshot } from '../src/store/schema.js';

export interface GenMailbox {
  address: string;
  /** The TOTP key, kept in the clear here so that the load client can compute codes. */
  key: Buffer;
  /** Remembered (known) addresses of this mailbox. */
  ips: string[];
}

export interface MailboxGroup {
  prefix: string;
  count: number;
  settings: LevelSettings;
}

export interface GeneratedStore {
  file: string;
  bytes: number;
  mailboxes: number;
  groups: Record<string, GenMailbox[]>;
  generateMs: number;
}

/** The n-th address of a public-looking IPv4 range starting at 81.0.0.0 (plenty of room, geo-located). */
export function ipFromCounter(base: number, n: number): string {
  const v = (base + n) >>> 0;
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}
export const KNOWN_IP_BASE = (81 << 24) >>> 0; // 81.0.0.0: the mailboxes' remembered addresses
export const NEW_IP_BASE = (90 << 24) >>> 0; // 90.0.0.0: addresses a write phase logs in from

export async function generateStore(dataDir: string, groups: MailboxGroup[]): Promise<GeneratedStore> {
  const t0 = Date.now();
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  const keyring = await Keyring.load(path.join(dataDir, 'memfa.key'), { create: true });
  const now = Date.now();
  const mailboxes: Record<string, MailboxRecord> = {};
  const out: Record<string, GenMailbox[]> = {};
  let n = 0;
  for (const g of groups) {
    const list: GenMailbox[] = [];
    for (let i = 0; i < g.count; i++, n++) {
      const address = `${g.prefix}${i}@d${i % 100}.bench.example`;
      const key = randomBytes(20);
      const ips = [ipFromCounter(KNOWN_IP_BASE, 2 * n), ipFromCounter(KNOWN_IP_BASE, 2 * n + 1)];
      const rec: MailboxRecord = {
        ...newMailbox(address, now - 86_400_000),
        settings: { ...g.settings },
        totp: { sealedSecret: keyring.seal(key, secretAad(TOTP_PURPOSE, address)), activatedAt: now - 86_400_000, lastAcceptedStep: null },
        ips: ips.map((ip) => ({ ip, firstSeen: now - 86_400_000, lastSeen: now - 3_600_000 })),
        countries: [{ country: 'DE', firstSeen: now - 86_400_000, lastSeen: now - 3_600_000 }],
        updatedAt: now - 3_600_000,
      };
      mailboxes[address] = rec;
      list.push({ address, key, ips });
    }
    out[g.prefix] = list;
  }
  const snapshot: Snapshot = { schemaVersion: CURRENT_SCHEMA, seq: 0, global: {}, domains: {}, mailboxes, meta: { keyringCreated: now } };
  const file = path.join(dataDir, 'memfa.json');
  await writeFile(file, [...snapshotJson(snapshot)].join(''), { mode: 0o600 });
  await chmod(file, 0o600);
  const bytes = (await stat(file)).size;
  return { file, bytes, mailboxes: n, groups: out, generateMs: Date.now() - t0 };
}
