// A worker thread of pg-gen.ts: builds the COPY lines of a range of mailboxes, each with its TOTP
// secret sealed by memfa's keyring under the benchmark's key file. Sealing (a fresh cipher and IV
// per secret) is most of the cost of a million mailboxes, so it is spread over the cores.
import { parentPort, workerData } from 'node:worker_threads';
import { Keyring, secretAad } from '../src/security/keyring.js';
import { TOTP_PURPOSE } from '../src/services/enrol.js';
import { addressOf, totpKey } from './pg-gen-rows.js';

export interface ChunkRequest {
  id: number;
  prefix: string;
  /** Indexes within the group, [from, to). */
  from: number;
  to: number;
  /** The store-wide index of the group's first mailbox (the key's and addresses' counter). */
  start: number;
  settings: string;
  day: number;
  hour: number;
}

const { keyFile, seed } = workerData as { keyFile: string; seed: Uint8Array };
const keyring = await Keyring.load(keyFile, { create: false });
const seedBuf = Buffer.from(seed);

parentPort!.on('message', (r: ChunkRequest) => {
  const lines: string[] = [];
  for (let j = r.from; j < r.to; j++) {
    const address = addressOf(r.prefix, j);
    const sealed = keyring.seal(totpKey(seedBuf, r.start + j), secretAad(TOTP_PURPOSE, address));
    lines.push(`${address}\t${r.settings}\t{}\t${sealed}\t${r.day}\t${r.day}\t${r.hour}\n`);
  }
  parentPort!.postMessage({ id: r.id, text: lines.join('') });
});
