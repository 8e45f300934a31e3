// The audit trail through the real daemon: login volume cannot flush administrative events out,
// removing or cutting audit files is detected (also across a restart), and a lost audit write is
// counted, logged and recorded.
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

interface Entry {
  seq: number;
  time: string;
  action: string;
  result: string;
  reason: string | null;
  mailbox: string | null;
  ip: string | null;
  details?: Record<string, unknown>;
}

interface Check {
  ok: boolean;
  file?: string;
  line?: number;
  problem?: string;
}

/** `n` fast-path verifies (mode never: no factor needed), `parallel` at a time, over the hook socket. */
async function fastVerifies(d: TestDaemon, user: string, n: number, ip: (i: number) => string, parallel = 16): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let i = next++; i < n; i = next++) {
        const r = (await call(d.hookSocket, 'verify', { user, ip: ip(i) })) as { result: string };
        assert.equal(r.result, 'allow');
      }
    }),
  );
}

const distinctIp = (i: number) => `198.51.${(i >> 8) & 255}.${i & 255}`;

/**
 * Waits until the login lines recorded so far are written: the line of an answer that needs a
 * factor (here: enrol first) is awaited, and lines are written in the order they were issued.
 */
async function loginsWritten(d: TestDaemon): Promise<void> {
  await d.json(['mailbox', 'set', 'barrier@audit.example', '--challenge', 'always']);
  const r = (await call(d.hookSocket, 'verify', { user: 'barrier@audit.example', ip: '192.0.2.254' })) as { result: string };
  assert.equal(r.result, 'enroll');
}

async function auditVerify(d: TestDaemon): Promise<{ code: number | null; report: Check }> {
  const r = await d.cli(['--json', 'audit', 'verify']);
  return { code: r.code, report: JSON.parse(r.stdout) as Check };
}

async function withDaemon(config: Record<string, unknown>, fn: (d: TestDaemon) => Promise<void>): Promise<void> {
  const d = await startDaemon({ config });
  try {
    await fn(d);
  } finally {
    await d.cleanup();
  }
}

/** Removes the last `n` lines of a file. */
async function dropLastLines(file: string, n: number): Promise<void> {
  const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
  assert.ok(lines.length > n, `${file} has only ${lines.length} lines`);
  await writeFile(file, lines.slice(0, -n).map((l) => l + '\n').join(''));
}

/** The daemon log's lines at level error, parsed. */
function errorLines(d: TestDaemon): Record<string, unknown>[] {
  return d
    .log()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['level'] === 'error');
}

describe('audit trail end to end', () => {
  it('a flood of fast-path logins neither rotates administrative events out nor writes a line per login', async () => {
    // Small login files: before the fix 400 logins rotated everything out of the one file set.
    await withDaemon({ audit: { maxBytes: 4096, keep: 1 } }, async (d) => {
      await d.json(['mailbox', 'set', 'flood@audit.example', '--challenge', 'never']);
      await d.json(['domain', 'set', 'audit.example', '--challenge', 'never']);
      await fastVerifies(d, 'flood@audit.example', 400, distinctIp);
      await fastVerifies(d, 'repeat@audit.example', 300, () => '192.0.2.7');

      const changes = await d.json<{ entries: Entry[] }>(['audit', '--action', 'mailbox.set', '--mailbox', 'flood@audit.example']);
      assert.equal(changes.entries.length, 1, 'the administrative change is still queryable');
      assert.equal((await d.json<{ entries: Entry[] }>(['audit', '--action', 'domain.set'])).entries.length, 1);
      const intact = await auditVerify(d);
      assert.equal(intact.code, 0, JSON.stringify(intact.report));

      // Shutdown writes the counts of the current minute; they survive the restart.
      assert.equal(await d.stop(), 0);
      await d.restart();
      const repeats = await d.json<{ entries: Entry[] }>(['audit', '--mailbox', 'repeat@audit.example']);
      const logins = repeats.entries.reduce((sum, e) => sum + (typeof e.details?.['count'] === 'number' ? e.details['count'] : 1), 0);
      assert.equal(logins, 300, 'every login is counted');
      // One line at the first login of a minute, one with the count of the rest (a minute may end midway).
      assert.ok(repeats.entries.length <= 4, `${repeats.entries.length} lines for 300 logins of one mailbox from one address`);
      assert.ok(repeats.entries.every((e) => e.action === 'verify' && e.result === 'allow' && e.reason === 'mode-never' && e.ip === '192.0.2.7'));
      assert.equal((await d.json<{ entries: Entry[] }>(['audit', '--action', 'mailbox.set', '--mailbox', 'flood@audit.example'])).entries.length, 1);
      const after = await auditVerify(d);
      assert.equal(after.code, 0, `rotation is not removal: ${JSON.stringify(after.report)}`);
    });
  });

  it('lines cut from the end of the log while the daemon is stopped are detected at start and by audit verify', async () => {
    await withDaemon({}, async (d) => {
      await d.json(['mailbox', 'set', 'cut@audit.example', '--challenge', 'always']);
      // Challenges: every one a line of its own, awaited.
      for (let i = 0; i < 5; i++) assert.equal((await d.cli(['verify', '--user', 'cut@audit.example', '--ip', '192.0.2.1'])).code, 3);
      assert.equal((await auditVerify(d)).code, 0);
      assert.equal(await d.stop(), 0);
      await dropLastLines(path.join(d.dataDir, 'audit.log'), 2);
      await d.restart();
      const broken = await auditVerify(d);
      assert.equal(broken.code, 65, JSON.stringify(broken.report));
      assert.equal(broken.report.ok, false);
      assert.equal(broken.report.file, path.join(d.dataDir, 'audit.log'));
      assert.match(broken.report.problem ?? '', /missing|removed|truncated/);
      assert.ok(
        errorLines(d).some((l) => /audit/.test(String(l['event']))),
        `no error line about the audit log at start:\n${d.log()}`,
      );
      // Still reported after the next start: the break is recorded, not forgotten.
      assert.equal(await d.stop(), 0);
      await d.restart();
      assert.equal((await auditVerify(d)).code, 65);
    });
  });

  it('deleting every audit file, while stopped or while running, is detected', async () => {
    await withDaemon({}, async (d) => {
      await d.json(['mailbox', 'set', 'del@audit.example', '--challenge', 'always']);
      assert.equal((await d.cli(['verify', '--user', 'del@audit.example', '--ip', '192.0.2.1'])).code, 3);
      assert.equal(await d.stop(), 0);
      const audits = async () => (await readdir(d.dataDir)).filter((f) => f.startsWith('audit'));
      for (const f of await audits()) await rm(path.join(d.dataDir, f));
      await d.restart();
      const afterRestart = await auditVerify(d);
      assert.equal(afterRestart.code, 65, `deleted files pass as a new log: ${JSON.stringify(afterRestart.report)}`);
      assert.match(afterRestart.report.problem ?? '', /missing|removed|deleted/);
      assert.ok(errorLines(d).length > 0, `no error line at start:\n${d.log()}`);

      // While running: the removal is reported at once, and the daemon goes on recording.
      await d.json(['mailbox', 'set', 'del2@audit.example', '--challenge', 'never']);
      for (const f of await audits()) await rm(path.join(d.dataDir, f));
      assert.equal((await auditVerify(d)).code, 65);
      await d.json(['mailbox', 'set', 'del3@audit.example', '--challenge', 'never']);
      await new Promise((r) => setTimeout(r, 1200));
      await d.json(['mailbox', 'set', 'del4@audit.example', '--challenge', 'never']);
      assert.equal(await d.stop(), 0);
      await d.restart();
      const later = await auditVerify(d);
      assert.equal(later.code, 65, JSON.stringify(later.report));
      const kept = await d.json<{ entries: Entry[] }>(['audit', '--action', 'mailbox.set', '--mailbox', 'del4@audit.example']);
      assert.equal(kept.entries.length, 1, 'recording went on after the removal');
    });
  });

  it('removing the oldest rotated file is told apart from rotation', async () => {
    await withDaemon({ audit: { maxBytes: 4096, keep: 3 } }, async (d) => {
      await fastVerifies(d, 'rot@audit.example', 120, distinctIp);
      await loginsWritten(d);
      const files = (await readdir(d.dataDir)).filter((f) => f.startsWith('audit.log'));
      assert.ok(files.includes('audit.log.3'), `rotated files: ${files.join(', ')}`);
      assert.equal((await auditVerify(d)).code, 0, 'rotation alone keeps the log intact');
      await rm(path.join(d.dataDir, 'audit.log.3'));
      const running = await auditVerify(d);
      assert.equal(running.code, 65, JSON.stringify(running.report));
      assert.match(running.report.problem ?? '', /oldest|removed|missing/);
      assert.equal(await d.stop(), 0);
      await d.restart();
      assert.equal((await auditVerify(d)).code, 65);
    });
  });

  it('a lost audit write is counted in status, logged as an error and recorded once writing resumes', async () => {
    await withDaemon({ audit: { maxBytes: 4096, keep: 1 } }, async (d) => {
      await d.json(['mailbox', 'set', 'lost@audit.example', '--challenge', 'never']);
      // A non-empty directory where the rotated file goes makes the rotation fail, even for root.
      const blocker = path.join(d.dataDir, 'audit.log.1');
      await mkdir(path.join(blocker, 'blocker'), { recursive: true });
      await fastVerifies(d, 'lost@audit.example', 60, distinctIp, 4);
      await loginsWritten(d);
      const status = await d.json<{ audit?: { failedWrites: number; droppedLines: number } }>(['status']);
      assert.ok(status.audit !== undefined, 'status reports the audit trail');
      assert.ok(status.audit.failedWrites > 0, `failed writes: ${JSON.stringify(status.audit)}`);
      assert.ok(status.audit.droppedLines > 0);
      assert.ok(
        errorLines(d).some((l) => l['event'] === 'audit-write-failed'),
        `no audit-write-failed error line:\n${d.log()}`,
      );
      const text = await d.cli(['status']);
      assert.match(text.stdout, /lost|failed/);

      await rm(blocker, { recursive: true });
      await new Promise((r) => setTimeout(r, 1200));
      await fastVerifies(d, 'lost@audit.example', 5, (i) => distinctIp(1000 + i), 1);
      await loginsWritten(d);
      const lost = await d.json<{ entries: Entry[] }>(['audit', '--action', 'audit-lost']);
      assert.equal(lost.entries.length, 1, 'the loss is recorded in the chain');
      assert.equal(lost.entries[0]!.details?.['lines'], status.audit.droppedLines);
      const check = await auditVerify(d);
      assert.equal(check.code, 0, `the chain goes on unbroken past the loss: ${JSON.stringify(check.report)}`);
    });
  });
});
