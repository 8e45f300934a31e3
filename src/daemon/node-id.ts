// This node's id among the daemons of one store: made once, at the first start, and kept in the
// data directory, so that it survives restarts and upgrades and differs between hosts (and
// between daemons of one host, each with its own data directory). The store keeps what is this
// node's under it (its audit anchors, its claim to create the key file).
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MemfaError } from '../protocol/errors.js';

const NODE_ID = /^[0-9a-f]{16}$/;

export async function nodeId(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'node-id');
  const read = async () => (await readFile(file, 'utf8')).trim();
  let id: string;
  try {
    id = await read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new MemfaError('CONFIG_INVALID', `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { data: { file } });
    await writeFile(file, `${randomBytes(8).toString('hex')}\n`, { mode: 0o600, flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    id = await read();
  }
  if (!NODE_ID.test(id)) throw new MemfaError('CONFIG_INVALID', `${file} does not hold a node id (16 hexadecimal digits)`, { data: { file }, hint: 'remove it: the daemon makes a new one' });
  return id;
}
