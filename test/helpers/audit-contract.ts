// What an audit trail does whatever keeps its lines (files: src/audit/trail.ts; the shared
// database: src/store/postgres/audit.ts), run against each: the streams events go to, what an
// append answers, the filters of query, the counting of fast-path allows, the redaction of
// details, verify's counts, and what a closed trail does with further events.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditEntry, AuditEvent } from '../../src/audit/entry.js';
import { lineHash, parseEntry, serialiseEntry } from '../../src/audit/entry.js';
import type { AuditQuery } from '../../src/audit/query.js';
import type { TrailEntry } from '../../src/audit/trail.js';
import type { AuditStatus, AuditVerifyResult } from '../../src/protocol/results.js';

export interface ContractTrail {
  append(event: AuditEvent): Promise<AuditEntry | null>;
  record(event: AuditEvent): void;
  recordAllow(event: AuditEvent): void;
  query(filter?: AuditQuery): Promise<TrailEntry[]>;
  verify(): Promise<AuditVerifyResult>;
  status(): AuditStatus;
  close(): Promise<void>;
}

export interface ContractSubject {
  /** A fresh trail counting fast-path allows per minute. */
  trail: ContractTrail;
  /** The stored text of each line of `stream`, oldest first. */
  lines(stream: 'security' | 'logins'): Promise<string[]>;
  /** Closes what the trail runs on (after the trail itself). */
  dispose(): Promise<void>;
}

const change = (mailbox: string | null, action = 'reset', result = 'ok'): AuditEvent => ({ actor: 'admin', socket: 'admin', mailbox, action, result });
const login = (mailbox: string, result = 'deny', reason = 'code-invalid'): AuditEvent => ({ actor: 'hook', socket: 'hook', mailbox, action: 'verify', result, reason, ip: '192.0.2.7', country: 'NL' });
const allow = (mailbox: string): AuditEvent => ({ actor: 'hook', socket: 'hook', mailbox, action: 'verify', result: 'allow', reason: 'known-ip', ip: '192.0.2.1', country: 'DE' });
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function runAuditContract(name: string, open: () => Promise<ContractSubject>): void {
  describe(`audit trail contract: ${name}`, () => {
    const withTrail = async (work: (s: ContractSubject) => Promise<void>) => {
      const s = await open();
      try {
        await work(s);
      } finally {
        await s.trail.close();
        await s.dispose();
      }
    };

    it('append answers the line as stored, chained in its stream; logins and changes go to their own streams', () =>
      withTrail(async (s) => {
        const a = await s.trail.append(change('a@example.org'));
        const b = await s.trail.append(login('a@example.org'));
        const c = await s.trail.append({ ...login('a@example.org', 'allow', 'enrolled') });
        const d = await s.trail.append(change(null, 'settings.set'));
        assert.ok(a && b && c && d);
        assert.deepEqual([a.seq, c.seq, d.seq], [1, 2, 3], 'changes and factor changes: security');
        assert.equal(b.seq, 1, 'a login answer: logins, a chain of its own');
        const security = await s.lines('security');
        assert.deepEqual(security, [a, c, d].map(serialiseEntry), 'the entry answered is the exact line stored');
        assert.equal(a.prev, '0'.repeat(64));
        assert.equal(c.prev, lineHash(Buffer.from(security[0]!)));
        assert.equal(d.prev, lineHash(Buffer.from(security[1]!)));
        assert.deepEqual(parseEntry(Buffer.from(security[2]!)), d);
        assert.deepEqual(await s.lines('logins'), [serialiseEntry(b)]);
        const v = await s.trail.verify();
        assert.equal(v.ok, true, JSON.stringify(v));
        assert.equal(v.ok && v.lines, 4);
        assert.deepEqual(v.streams.map((x) => [x.stream, x.ok && x.lines]), [['security', 3], ['logins', 1]]);
      }));

    it('details are redacted, and details too large are replaced by a marker', () =>
      withTrail(async (s) => {
        const e = await s.trail.append({ ...change('a@example.org'), details: { note: 'kept', secret: 'JBSWY3DP', nested: { token: 't', n: 1 } } });
        assert.deepEqual(e?.details, { note: 'kept', nested: { n: 1 } });
        const big = await s.trail.append({ ...change('a@example.org'), details: { note: 'x'.repeat(20_000) } });
        assert.deepEqual(big?.details, { omitted: 'details too large' });
        const lines = await s.lines('security');
        assert.ok(!lines[0]!.includes('JBSWY3DP'));
        assert.ok(lines[1]!.length < 1000);
      }));

    it('query: each filter, both streams merged by time, a limit keeps the most recent', () =>
      withTrail(async (s) => {
        // Apart in time: at the same millisecond the security stream's lines come first.
        const first = await s.trail.append(change('a@example.org'));
        await pause(3);
        await s.trail.append(login('b@example.org'));
        await pause(3);
        await s.trail.append(change('c@other.test', 'unlock'));
        await pause(3);
        await s.trail.append(change(null, 'settings.set'));
        await pause(3);
        const last = await s.trail.append(login('a@example.org', 'challenge', 'new-ip'));
        assert.ok(first && last);
        const all = await s.trail.query();
        assert.equal(all.length, 5);
        assert.deepEqual(all.map((e) => e.stream), ['security', 'logins', 'security', 'security', 'logins']);
        assert.deepEqual(all[0], { ...first, stream: 'security' });
        const mailboxes = (f: AuditQuery) => s.trail.query(f).then((es) => es.map((e) => `${e.mailbox}:${e.action}`));
        assert.deepEqual(await mailboxes({ mailbox: 'a@example.org' }), ['a@example.org:reset', 'a@example.org:verify']);
        assert.deepEqual(await mailboxes({ domains: ['other.test', 'example.org'] }), ['a@example.org:reset', 'b@example.org:verify', 'c@other.test:unlock', 'a@example.org:verify'], 'an entry of no mailbox is in no domain');
        assert.deepEqual(await mailboxes({ domains: ['other.test'] }), ['c@other.test:unlock']);
        assert.deepEqual(await mailboxes({ action: 'verify', result: 'deny' }), ['b@example.org:verify']);
        assert.deepEqual(await mailboxes({ since: new Date(last.time) }), ['a@example.org:verify'], 'since is inclusive');
        assert.deepEqual(await mailboxes({ until: new Date(Date.parse(first.time) + 1) }), ['a@example.org:reset'], 'until is exclusive');
        assert.deepEqual(await mailboxes({ until: new Date(first.time) }), []);
        assert.deepEqual(await mailboxes({ limit: 2 }), ['null:settings.set', 'a@example.org:verify'], 'the most recent, oldest first');
        assert.deepEqual(await mailboxes({ mailbox: 'a@example.org', domains: ['other.test'] }), [], 'filters all apply');
        assert.deepEqual(await s.trail.query({ limit: 0 }), []);
        await assert.rejects(s.trail.query({ limit: -1 }), RangeError);
      }));

    it('fast-path allows: the first of a window at once, the others as one counted line at close', () =>
      withTrail(async (s) => {
        for (let i = 0; i < 50; i++) s.trail.recordAllow(allow('fast@example.org'));
        s.trail.recordAllow(allow('other@example.org'));
        await s.trail.close();
        const entries = await s.trail.query({ action: 'verify' });
        assert.deepEqual(
          entries.map((e) => [e.mailbox, e.details?.['count'] ?? 1]),
          [
            ['fast@example.org', 1],
            ['other@example.org', 1],
            ['fast@example.org', 49],
          ],
        );
        assert.ok(entries.every((e) => e.stream === 'logins'));
        const counted = entries[2]!.details!;
        assert.ok(Date.parse(counted['first'] as string) <= Date.parse(counted['last'] as string));
      }));

    it('a closed trail counts what it is given as lost; what was written before still verifies', () =>
      withTrail(async (s) => {
        s.trail.record(login('a@example.org'));
        await s.trail.append(change('a@example.org'));
        await s.trail.close();
        assert.equal(await s.trail.append(change('b@example.org')), null);
        s.trail.record(login('b@example.org'));
        const status = s.trail.status();
        assert.equal(status.droppedLines, 2);
        assert.deepEqual(status.streams.map((x) => [x.name, x.seq, x.droppedLines]), [['security', 1, 1], ['logins', 1, 1]]);
        const v = await s.trail.verify();
        assert.equal(v.ok, true, JSON.stringify(v));
        assert.equal(v.ok && v.lines, 2);
      }));
  });
}
