// `memfa verify` runs on every login: it loads the client, the configuration and the wire
// protocol, and nothing of the daemon's logic. A module of the core imported for one list of
// words (config/spec.ts's) once pulled in the decision, lockout and country tables, 4.7 MB more
// for every login hook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modulesReached } from './helpers/imports.js';

test('memfa verify loads no module of the core but its wording, and nothing of the daemon, services, store or delivery', () => {
  const reached = [...modulesReached('cli/verify.js')].sort();
  assert.ok(reached.includes('client/call.js') && reached.includes('config/load.js'), `the walk follows imports: ${reached.join(', ')}`);
  const heavy = reached.filter((m) => /^(daemon|services|store|delivery|security|audit|geo|metrics)\//.test(m) || (m.startsWith('core/') && m !== 'core/wording.js'));
  assert.deepEqual(heavy, [], `modules on the verify path: ${reached.join(', ')}`);
});
