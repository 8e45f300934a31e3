// memfa key add, memfa key rotate, memfa audit, memfa audit verify.
import type { Command } from 'commander';
import { EXIT } from '../../protocol/errors.js';
import type { Cli } from '../context.js';
import { parseLimit } from '../flags.js';
import { formatAudit, formatAuditVerify, formatKeyAdd, formatKeyRotate } from '../format.js';

export function registerKeysAndAudit(program: Command, cli: Cli): void {
  const key = program.command('key').description('the key that encrypts secrets at rest');
  key
    .command('add')
    .description('add a key to the key file without using it yet (the next rotate makes it current)')
    .action(async () => {
      const r = await cli.call('key.add', {});
      cli.print(r, () => formatKeyAdd(r));
    });
  key
    .command('rotate')
    .description('make the added key (or a new one) current, re-encrypt every secret under it, retire the old keys (no downtime)')
    .action(async () => {
      const r = await cli.call('key.rotate', {});
      cli.print(r, () => formatKeyRotate(r));
    });

  const audit = program
    .command('audit')
    .description('query the audit log (with a domain administrator\'s token: the entries of their domains\' mailboxes only)')
    .option('--mailbox <address>', 'only this mailbox')
    .option('--since <time>', 'from this time (ISO 8601, or 15m, 2h, 7d ago)')
    .option('--until <time>', 'before this time')
    .option('--result <result>', 'only this result (allow, deny, challenge, enroll, error, ok, ...)')
    .option('--action <action>', 'only this action (verify, mailbox.set, reset, ...)')
    .option('--limit <n>', 'the most recent n entries (default 1000)', parseLimit)
    .action(async (f: { mailbox?: string; since?: string; until?: string; result?: string; action?: string; limit?: number }) => {
      const r = await cli.call('audit.query', f);
      cli.print(r, () => formatAudit(r));
    });
  audit
    .command('verify')
    .description('check the hash chains of the audit log (tampering, removed lines or files)')
    .action(async () => {
      const r = await cli.call('audit.verify', {});
      cli.print(r, (c) => formatAuditVerify(r, c));
      if (!r.ok) process.exitCode = EXIT.DATAERR;
    });
}
