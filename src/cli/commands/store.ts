// memfa store export, memfa store import: the whole state as a versioned JSON-lines stream
// (store/transfer/format.ts), between a file store and PostgreSQL in either direction. They talk
// to no daemon: each works on the store the configuration names (cli/store-transfer.ts says how).
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { MemfaError } from '../../protocol/errors.js';
import { describeCounts, type Header, type StateCounts } from '../../store/transfer/format.js';
import { exportState, importState } from '../../store/transfer/run.js';
import { VERSION } from '../../version.js';
import type { Cli } from '../context.js';
import { out, printJson, warn } from '../io.js';
import { openSink, openSource, progressBar, streamIn, streamOut } from '../store-transfer.js';

const EXPORT_HELP = `
The stream holds every mailbox (its TOTP secret and open codes still sealed with the key file,
its recovery codes and app passwords as keyed hashes), the domains, the global settings, the
provider policy, the domain administrators, and both audit streams line for line; not the key
file, which the target's daemons need a copy of, and not the throttles (blocked sources, send
limits, failures of unknown mailboxes), which start afresh. It is as secret as the store: keep it
mode 0600 (--output makes it so). A file store is exported only while no daemon has it open; a
PostgreSQL database while its daemons run, as one consistent snapshot. See memfa(1), "Moving the store".`;

const IMPORT_HELP = `
The stream is checked whole (every line's shape, the order, the counts, the checksum of its
trailer) before anything of it is kept: a stream cut short, changed, or of a newer format is
refused, naming the line and the field. A target that already holds state is refused; --replace
replaces it whole (PostgreSQL: in the same transaction; a file store's audit files are set aside
as FILE.before-import-TIME, never deleted). A file store is imported only while no daemon has it
open. Give the target's daemons the source's key file. See memfa(1), "Moving the store".`;

function summary(verb: 'exported' | 'imported', counts: StateCounts, where: string): string {
  return `${verb} ${describeCounts(counts)} ${verb === 'exported' ? 'from' : 'into'} ${where}`;
}

export function registerStore(program: Command, cli: Cli): void {
  const store = program.command('store').description('move the whole state between stores: export and import (file store or PostgreSQL; no daemon needed)');
  store
    .command('export')
    .description('write the whole state, secrets still sealed, as a JSON-lines stream (standard output by default)')
    .option('--output <file>', 'write the stream to this file (mode 0600), in place only once complete')
    .addHelpText('after', EXPORT_HELP)
    .action(async (f: { output?: string }) => {
      const json = cli.opts().json === true;
      const config = cli.config();
      const target = await streamOut(f.output);
      const progress = progressBar(!json && process.stderr.isTTY === true);
      let counts: StateCounts;
      let where: string;
      try {
        const opened = await openSource(config);
        where = opened.where;
        try {
          counts = await exportState(opened.source, target.out, { memfa: VERSION, now: new Date(), progress: progress.sink });
        } finally {
          progress.clear();
          await opened.close();
        }
        await target.done();
      } catch (err) {
        await target.fail();
        throw err;
      }
      const report = { result: 'ok', source: config.store.backend, counts, ...(f.output === undefined ? {} : { output: f.output }) };
      // Without --output, standard output is the stream: the summary goes to standard error.
      if (f.output === undefined) {
        if (!json) process.stderr.write(`memfa: ${summary('exported', counts, where)}\n`);
      } else if (json) printJson(report);
      else out(`${summary('exported', counts, where)} to ${f.output}`);
    });
  store
    .command('import')
    .description('read a stream written by memfa store export into the configured store (standard input by default)')
    .option('--input <file>', 'read the stream from this file')
    .option('--replace', 'replace a target that already holds state (otherwise refused: an import never merges)')
    .addHelpText('after', IMPORT_HELP)
    .action(async (f: { input?: string; replace?: boolean }) => {
      const json = cli.opts().json === true;
      const config = cli.config();
      const source = await streamIn(f.input);
      const progress = progressBar(!json && process.stderr.isTTY === true);
      let header: Header;
      let where: string;
      try {
        const opened = await openSink(config, f.replace === true);
        where = opened.where;
        try {
          header = await importState(source.input, opened.sink, { progress: progress.sink });
        } finally {
          progress.clear();
          await opened.close();
        }
      } finally {
        await source.close();
      }
      if (header === undefined) throw new MemfaError('INTERNAL', 'the import ended without a header');
      const report = { result: 'ok', target: config.store.backend, source: header.source, memfa: header.memfa, createdAt: header.createdAt, counts: header.counts };
      if (json) printJson(report);
      else out(`${summary('imported', header.counts, where)} (a ${header.source} store exported by memfa ${header.memfa} at ${header.createdAt})`);
      // The secrets came sealed: without the source's key file no daemon can open them.
      if (!existsSync(config.keyFile)) warn([`the key file ${config.keyFile} does not exist: copy the source's key file there before starting a daemon`]);
    });
}
