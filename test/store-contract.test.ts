// The state contract (test/helpers/state-contract.ts) against the file store, and against the same
// ports over the in-memory store the service tests use (so that what they rely on is held too).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FileStore } from '../src/store/file-store.js';
import { FileStatePorts } from '../src/store/state-ports.js';
import { MemoryStore } from './helpers/memory-store.js';
import { runStateContract } from './helpers/state-contract.js';

runStateContract('file store', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'memfa-contract-'));
  const store = await FileStore.open(path.join(dir, 'memfa.json'));
  return {
    ports: new FileStatePorts(store),
    async close() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

runStateContract('memory store', async () => ({ ports: new FileStatePorts(new MemoryStore()), close: () => Promise.resolve() }));
