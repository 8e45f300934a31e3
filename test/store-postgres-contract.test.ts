// The state contract (test/helpers/state-contract.ts) and the administration's
// (test/helpers/admin-state-contract.ts), unchanged, against the PostgreSQL store on a throwaway cluster: each test gets a fresh database, migrated, and three daemons' worth of ports
// (each with its own pool) behind one object that hands each call to the next, so that every
// concurrency case of the contract runs across several daemons.
import { after, test } from 'node:test';
import { migrate } from '../src/store/postgres/migrate.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { PgStatePorts } from '../src/store/postgres/state-ports.js';
import { pgSettings, postgresMissing, roundRobin, startPostgres, type PgCluster } from './helpers/postgres.js';
import { runAdminStateContract } from './helpers/admin-state-contract.js';
import { runStateContract } from './helpers/state-contract.js';

const missing = postgresMissing();
if (missing !== null) {
  test(`state contract: PostgreSQL store (SKIPPED: ${missing})`, { skip: missing }, () => {});
} else {
  let cluster: Promise<PgCluster> | null = null;
  after(async () => {
    if (cluster !== null) await (await cluster).stop();
  });
  const open = async () => {
    cluster ??= startPostgres();
    const c = await cluster;
    const name = await c.createDatabase();
    // Generous waits: on a loaded machine a hundred serialised changes of one row take seconds,
    // and the contract is about what is decided, not how fast (store-postgres.test.ts tests the bounds).
    const waits = { connectTimeoutMs: 60_000, statementTimeoutMs: 60_000, lockTimeoutMs: 60_000 };
    const dbs = [1, 2, 3].map(() => new Db(createPool(pgSettings(c, name, { poolMax: 4, ...waits }))));
    await migrate(dbs[0]!);
    return {
      ports: roundRobin(dbs.map((db) => new PgStatePorts(db))),
      async close() {
        await Promise.all(dbs.map((db) => db.close()));
      },
    };
  };
  runStateContract('PostgreSQL store, three pools', open);
  runAdminStateContract('PostgreSQL store, three pools', open);
}
