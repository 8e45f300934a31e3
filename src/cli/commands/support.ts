// Support of one mailbox: memfa enroll, reset, explain, unlock, recovery-codes.
import { Option, type Command } from 'commander';
import { APP_PROTOCOLS, type AppProtocol } from '../../protocol/vocabulary.js';
import { formatProtocolExplain } from '../format-app-passwords.js';
import type { Cli } from '../context.js';
import { askCode, showEnrolment } from '../enrolment.js';
import { formatActivated, formatExplain, formatProviderNote, formatRecoveryCodes, formatReset, formatUnlock } from '../format.js';
import { out, printJson, usage } from '../io.js';

export function registerSupport(program: Command, cli: Cli): void {
  program
    .command('enroll')
    .argument('<address>')
    .description('create a TOTP secret, show it as a QR code, and activate it with a code from the app')
    .option('--no-confirm', 'activate at once, without asking for a code (scripted provisioning)')
    .addHelpText('after', '\nWith --json (and without --no-confirm) the pending secret and URI are printed,\nand the secret is activated by the first verify with a valid code from the app.')
    .option('--restart', 'discard a pending secret and create a new one')
    .action(async (address: string, f: { confirm: boolean; restart?: boolean }) => {
      const e = await cli.call('enroll.start', { address, restart: f.restart === true });
      const json = cli.opts().json === true;
      const c = cli.chalk();
      const providerNote = async () => {
        const m = await cli.call('mailbox.show', { address });
        const note = formatProviderNote(m.address, m.effective.provider, c);
        if (note !== null) out(note);
      };
      if (!f.confirm) {
        const done = await cli.call('enroll.confirm', { address, force: true });
        if (json) printJson({ ...e, ...done });
        else {
          await showEnrolment(e, c, false);
          out(formatActivated(address, 'forced', c));
          await providerNote();
        }
        return;
      }
      if (json) {
        // Scripts get the pending secret; the user's first login with a code from the app
        // (memfa verify --code) confirms it.
        printJson({ ...e, activated: false });
        return;
      }
      await showEnrolment(e, c);
      await providerNote();
      const code = await askCode();
      await cli.call('enroll.confirm', { address, code });
      out(formatActivated(address, 'confirmed', c));
    });

  program
    .command('reset')
    .argument('<address>')
    .description('after a lost phone: remove the TOTP secret and/or the remembered locations')
    .option('--secret', 'remove the TOTP secret (the user enrols again at the next login)')
    .option('--locations', 'forget remembered IP addresses and countries')
    .option('--all', 'both')
    .action(async (address: string, f: { secret?: boolean; locations?: boolean; all?: boolean }) => {
      const secret = f.all === true || f.secret === true;
      const locations = f.all === true || f.locations === true;
      if (!secret && !locations) throw usage('reset: give --secret, --locations or --all');
      const r = await cli.call('reset', { address, secret, locations });
      cli.print(r, () => formatReset(address, secret, locations));
    });

  program
    .command('explain')
    .argument('<address>')
    .requiredOption('--ip <ip>', 'the client address to decide for')
    .addOption(new Option('--protocol <protocol>', 'decide for a mail-protocol login (login.check) instead of verify').choices(APP_PROTOCOLS))
    .description('dry run: what verify (or, with --protocol, a mail-protocol login) would get and why (changes nothing, sends nothing)')
    .action(async (address: string, f: { ip: string; protocol?: AppProtocol }) => {
      const r = await cli.call('explain', f.protocol === undefined ? { address, ip: f.ip } : { address, ip: f.ip, protocol: f.protocol });
      // The answer for a protocol names it (ProtocolExplainResult); verify's does not.
      cli.print(r, (c) => ('protocol' in r ? formatProtocolExplain(r, c) : formatExplain(r, c)));
    });

  program
    .command('unlock')
    .argument('<address>')
    .description('clear a mailbox\'s failure counters and locks, at remembered IPs and elsewhere (a hard lock too)')
    .action(async (address: string) => {
      const r = await cli.call('unlock', { address });
      cli.print(r, () => formatUnlock(address, r));
    });

  program
    .command('recovery-codes')
    .argument('<address>')
    .description('generate 10 single-use recovery codes (shown once; the previous set stops working)')
    .action(async (address: string) => {
      const r = await cli.call('recovery.generate', { address });
      cli.print(r, (c) => formatRecoveryCodes(address, r.codes, c));
    });
}
