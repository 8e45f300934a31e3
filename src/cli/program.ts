// The administrative commands, built with commander. Loaded for everything except the fast paths.
import { readFileSync } from 'node:fs';
import { Chalk, type ChalkInstance } from 'chalk';
import { Command, CommanderError, Option } from 'commander';
import { call } from '../client/call.js';
import { EXIT } from '../protocol/errors.js';
import type { MethodName, ParamsOf } from '../protocol/methods.js';
import type { EnrolResult, ExplainResult, MailboxView, StatusResult } from '../protocol/results.js';
import { formatEffective, formatExplain, formatLock, formatMailbox, formatStatus, rows } from './format.js';
import { configFor, out, printJson, reportError, socketFor, usage, useColor, type GlobalOptions } from './io.js';
import { VERIFY_HELP } from './verify.js';
import { VERSION } from '../version.js';

const CHALLENGE = ['never', 'always', 'new-ip', 'new-country', 'inherit'];
const PROVIDER = ['totp', 'sms', 'email', 'inherit'];
const FALLBACK = ['none', 'totp', 'sms', 'email', 'inherit'];

interface SettingFlags {
  challenge?: string;
  provider?: string;
  fallback?: string;
  countryBlock?: string;
  countryAllow?: string;
  countryRule?: string;
  trustedNetworks?: string;
  usersMayConfigure?: string;
}

function parseLimit(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw usage('--limit: expected a positive integer');
  return n;
}

function settingsPatch(f: SettingFlags): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  if (f.challenge !== undefined) patch['challenge'] = f.challenge;
  if (f.provider !== undefined) patch['provider'] = f.provider;
  if (f.fallback !== undefined) patch['fallbackProvider'] = f.fallback;
  const rules = [f.countryBlock, f.countryAllow, f.countryRule].filter((v) => v !== undefined);
  if (rules.length > 1) throw usage('give one of --country-block, --country-allow and --country-rule inherit');
  if (f.countryBlock !== undefined) patch['countryRule'] = { mode: 'block', countries: f.countryBlock.split(',').map((s) => s.trim()).filter(Boolean) };
  if (f.countryAllow !== undefined) patch['countryRule'] = { mode: 'allow-only', countries: f.countryAllow.split(',').map((s) => s.trim()).filter(Boolean) };
  if (f.countryRule !== undefined) {
    if (f.countryRule !== 'inherit') throw usage('--country-rule takes only "inherit" (to remove this level\'s rule)');
    patch['countryRule'] = 'inherit';
  }
  if (f.trustedNetworks !== undefined) patch['trustedNetworks'] = f.trustedNetworks === 'inherit' ? 'inherit' : f.trustedNetworks.split(',').map((s) => s.trim()).filter(Boolean);
  if (f.usersMayConfigure !== undefined) patch['usersMayConfigure'] = f.usersMayConfigure;
  return patch;
}

function addSettingOptions(cmd: Command, level: 'global' | 'domain' | 'mailbox'): Command {
  cmd
    .addOption(new Option('--challenge <mode>', 'when to ask for a second factor').choices(CHALLENGE))
    .addOption(new Option('--provider <provider>', 'how the second factor is given').choices(PROVIDER))
    .addOption(new Option('--fallback <provider>', 'provider tried when sending through the first fails').choices(FALLBACK))
    .option('--country-block <CC,..>', 'refuse logins from these countries (ISO 3166 codes)')
    .option('--country-allow <CC,..>', 'refuse logins from every country but these')
    .option('--country-rule <inherit>', 'remove the country rule of this level');
  if (level !== 'mailbox') {
    cmd.option('--trusted-networks <CIDR,..|inherit>', 'networks whose logins need no second factor');
    cmd.addOption(new Option('--users-may-configure <yes|no|inherit>', 'whether end users may change their own MFA settings').choices(['yes', 'no', 'inherit']));
  }
  return cmd;
}

class Cli {
  constructor(private readonly program: Command) {}

  opts(): GlobalOptions {
    return this.program.opts<GlobalOptions>();
  }

  chalk(): ChalkInstance {
    return new Chalk({ level: useColor(this.opts()) ? 1 : 0 });
  }

  /** A domain administrator's token, from --token-file or $MEMFA_TOKEN (never from argv). */
  token(): string | undefined {
    const file = this.opts().tokenFile;
    if (file !== undefined) {
      try {
        return readFileSync(file, 'utf8').trim();
      } catch (err) {
        throw usage(`--token-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    const env = process.env['MEMFA_TOKEN'];
    return env === undefined || env === '' ? undefined : env.trim();
  }

  /** Administration: the admin socket, or with a token the hook socket, scoped to the token's domains. */
  async call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<unknown> {
    const token = this.token();
    if (token === undefined) return call(socketFor(this.opts(), 'admin'), method, params);
    return call(socketFor(this.opts(), 'hook'), method, { ...params, auth: token } as ParamsOf<M>);
  }

  /** Self-service: always the hook socket. */
  async callSelf<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<unknown> {
    return call(socketFor(this.opts(), 'hook'), method, params);
  }

  print(value: unknown, human: (c: ChalkInstance) => string): void {
    if (this.opts().json) printJson(value);
    else out(human(this.chalk()));
  }
}

export function buildProgram(): { program: Command; cli: Cli } {
  const program = new Command();
  const cli = new Cli(program);
  program
    .name('memfa')
    .description('multi-factor authentication for mail servers')
    .version(VERSION, '-V, --version', 'print the version')
    .option('--config <file>', 'configuration file (default: $MEMFA_CONFIG, /etc/memfa/memfa.json, the shipped default)')
    .option('--socket <path>', 'talk to this socket instead of the configured one')
    .option('--data-dir <dir>', 'data directory (overrides the configuration; also $MEMFA_DATA_DIR)')
    .option('--run-dir <dir>', 'socket directory (overrides the configuration; also $MEMFA_RUN_DIR)')
    .option('--token-file <file>', 'act as a domain administrator with the token in this file (also $MEMFA_TOKEN)')
    .option('--json', 'print one JSON document on stdout')
    .option('--no-color', 'no colour (also NO_COLOR, and when stdout is not a terminal)')
    .showHelpAfterError('(memfa --help lists the commands)')
    .exitOverride();

  program
    .command('daemon')
    .description('run the daemon in the foreground (logs to stderr; stop with SIGTERM)')
    .action(async () => {
      const { runDaemon } = await import('../daemon/main.js');
      process.exitCode = await runDaemon(configFor(cli.opts()));
    });

  program
    .command('status')
    .argument('[address]', 'a mailbox: whether and why it is locked, and until when')
    .description('daemon version, uptime, store, mailbox count and provider status; or one mailbox\'s lock')
    .action(async (address: string | undefined) => {
      if (address !== undefined) {
        const m = (await cli.call('mailbox.show', { address })) as MailboxView;
        cli.print({ address: m.address, lock: m.lock }, (c) => formatLock(m, c));
        return;
      }
      const s = (await cli.call('status', {})) as StatusResult;
      cli.print(s, (c) => formatStatus(s, c));
    });

  // verify runs through its own light parser (cli/verify.ts, see main.ts); it is listed here so
  // that `memfa --help` and `memfa help verify` show it.
  const verify = program
    .command('verify')
    .description('ask whether a login needs a second factor, or check one (for login hooks)')
    .helpOption(false)
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => {
      out(VERIFY_HELP);
    });
  verify.helpInformation = () => VERIFY_HELP;

  // mailbox
  const mailbox = program.command('mailbox').description('per-mailbox settings');
  addSettingOptions(mailbox.command('set').argument('<address>').description('change a mailbox\'s settings ("inherit" removes one)'), 'mailbox')
    .option('--phone <E164|none>', 'phone number for SMS codes')
    .option('--alt-email <address|none>', 'alternate address for email codes (not the mailbox itself)')
    .action(async (address: string, f: SettingFlags & { phone?: string; altEmail?: string }) => {
      const params: ParamsOf<'mailbox.set'> = { address, settings: settingsPatch(f) };
      if (f.phone !== undefined) params.phone = f.phone === 'none' ? null : f.phone;
      if (f.altEmail !== undefined) params.altEmail = f.altEmail === 'none' ? null : f.altEmail;
      const m = (await cli.call('mailbox.set', params)) as MailboxView;
      cli.print(m, (c) => formatMailbox(m, c));
    });
  mailbox
    .command('show')
    .argument('<address>')
    .description('effective settings (and where each comes from), enrolment, locations, lock')
    .action(async (address: string) => {
      const m = (await cli.call('mailbox.show', { address })) as MailboxView;
      cli.print(m, (c) => formatMailbox(m, c));
    });
  mailbox
    .command('list')
    .description('stored mailboxes')
    .option('--domain <domain>', 'only this domain')
    .option('--limit <n>', 'at most n', parseLimit)
    .option('--after <address>', 'start after this address (paging)')
    .action(async (f: { domain?: string; limit?: number; after?: string }) => {
      const r = (await cli.call('mailbox.list', f)) as { total: number; mailboxes: { address: string; challenge: string; provider: string; totp: string; locked: boolean }[] };
      cli.print(r, (c) =>
        r.mailboxes.length === 0
          ? 'no stored mailboxes'
          : r.mailboxes.map((m) => `${m.address}\t${m.challenge}\t${m.provider}\ttotp:${m.totp}${m.locked ? '\t' + c.red('locked') : ''}`).join('\n'),
      );
    });
  mailbox
    .command('remove')
    .argument('<address>')
    .description('forget a mailbox entirely (settings, secret, locations); it then inherits')
    .action(async (address: string) => {
      const r = await cli.call('mailbox.remove', { address });
      cli.print(r, () => `removed ${address}`);
    });

  // domain
  const domain = program.command('domain').description('per-domain settings, inherited by its mailboxes');
  addSettingOptions(domain.command('set').argument('<domain>').description('change a domain\'s settings ("inherit" removes one)'), 'domain').action(
    async (d: string, f: SettingFlags) => {
      const r = (await cli.call('domain.set', { domain: d, settings: settingsPatch(f) })) as DomainView;
      cli.print(r, (c) => formatDomain(r, c));
    },
  );
  domain
    .command('show')
    .argument('<domain>')
    .action(async (d: string) => {
      const r = (await cli.call('domain.show', { domain: d })) as DomainView;
      cli.print(r, (c) => formatDomain(r, c));
    });
  domain.command('list').action(async () => {
    const r = (await cli.call('domain.list', {})) as { domains: { domain: string; settings: Record<string, unknown>; mailboxes: number }[] };
    cli.print(r, () => (r.domains.length === 0 ? 'no domain settings' : r.domains.map((d) => `${d.domain}\t${d.mailboxes} mailboxes\t${JSON.stringify(d.settings)}`).join('\n')));
  });
  domain
    .command('remove')
    .argument('<domain>')
    .description("remove a domain's settings (its mailboxes then inherit the global ones)")
    .action(async (d: string) => {
      const r = await cli.call('domain.remove', { domain: d });
      cli.print(r, () => `removed the settings of ${d}`);
    });

  // global
  const global = program.command('global').description('global settings, inherited by every domain');
  addSettingOptions(global.command('set').description('change a global setting ("inherit" falls back to the configuration default)'), 'global').action(async (f: SettingFlags) => {
    const r = (await cli.call('global.set', { settings: settingsPatch(f) })) as GlobalView;
    cli.print(r, (c) => rows(formatEffective(r.effective, c)));
  });
  global.command('show').action(async () => {
    const r = (await cli.call('global.show', {})) as GlobalView;
    cli.print(r, (c) => rows(formatEffective(r.effective, c)));
  });

  program
    .command('enroll')
    .argument('<address>')
    .description('create a TOTP secret, show it as a QR code, and activate it with a code from the app')
    .option('--no-confirm', 'activate at once, without asking for a code (scripted provisioning)')
    .addHelpText('after', '\nWith --json (and without --no-confirm) the pending secret and URI are printed and the\nsecret is activated by the first verify with a valid code from the app.')
    .option('--restart', 'discard a pending secret and create a new one')
    .action(async (address: string, f: { confirm: boolean; restart?: boolean }) => {
      const e = (await cli.call('enroll.start', { address, restart: f.restart === true })) as EnrolResult;
      const json = cli.opts().json === true;
      if (!f.confirm) {
        const done = await cli.call('enroll.confirm', { address, force: true });
        if (json) printJson({ ...e, ...(done as object) });
        else {
          await showEnrolment(e, cli.chalk());
          out(`activated ${address} without confirmation`);
        }
        return;
      }
      if (json) {
        // Scripts get the pending secret; the user's first login with a code from the app
        // (memfa verify --code) confirms it.
        printJson({ ...e, activated: false });
        return;
      }
      await showEnrolment(e, cli.chalk());
      const code = await askCode();
      await cli.call('enroll.confirm', { address, code });
      out(cli.chalk().green(`activated: ${address} now uses TOTP`));
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
      cli.print(r, () => `reset ${address}: ${[secret ? 'TOTP secret removed' : '', locations ? 'locations forgotten' : ''].filter(Boolean).join(', ')}`);
    });

  program
    .command('explain')
    .argument('<address>')
    .requiredOption('--ip <ip>', 'the client address to decide for')
    .description('dry run: what verify would decide for this login and why (changes nothing, sends nothing)')
    .action(async (address: string, f: { ip: string }) => {
      const r = (await cli.call('explain', { address, ip: f.ip })) as ExplainResult;
      cli.print(r, (c) => formatExplain(r, c));
    });

  program
    .command('unlock')
    .argument('<address>')
    .description('clear a mailbox\'s failure counters and locks, at remembered IPs and elsewhere (a hard lock too)')
    .action(async (address: string) => {
      const r = (await cli.call('unlock', { address })) as { failuresCleared: number };
      cli.print(r, () => `unlocked ${address} (${r.failuresCleared} failures cleared)`);
    });

  program
    .command('recovery-codes')
    .argument('<address>')
    .description('generate 10 single-use recovery codes (shown once; the previous set stops working)')
    .action(async (address: string) => {
      const r = (await cli.call('recovery.generate', { address })) as { codes: string[] };
      cli.print(r, (c) => [`recovery codes for ${address} (each works once; store them offline):`, ...r.codes.map((x) => '  ' + c.bold(x))].join('\n'));
    });

  const key = program.command('key').description('the key that encrypts secrets at rest');
  key
    .command('rotate')
    .description('create a new key, re-encrypt every secret under it, retire the old key (no downtime)')
    .action(async () => {
      const r = (await cli.call('key.rotate', {})) as { kid: string; resealed: number; retired: string[] };
      cli.print(r, () => `new key ${r.kid}; ${r.resealed} mailboxes re-encrypted; retired ${r.retired.length === 0 ? 'nothing' : r.retired.join(', ')}`);
    });

  const audit = program
    .command('audit')
    .description('query the audit log')
    .option('--mailbox <address>', 'only this mailbox')
    .option('--since <time>', 'from this time (ISO 8601, or 15m, 2h, 7d ago)')
    .option('--until <time>', 'before this time')
    .option('--result <result>', 'only this result (allow, deny, challenge, enroll, error, ok, ...)')
    .option('--action <action>', 'only this action (verify, mailbox.set, reset, ...)')
    .option('--limit <n>', 'the most recent n entries (default 1000)', parseLimit)
    .action(async (f: { mailbox?: string; since?: string; until?: string; result?: string; action?: string; limit?: number }) => {
      const r = (await cli.call('audit.query', f)) as { entries: { time: string; actor: string; mailbox: string | null; action: string; result: string; reason: string | null; ip: string | null; country: string | null }[] };
      cli.print(r, () =>
        r.entries.length === 0
          ? 'no matching entries'
          : r.entries.map((e) => [e.time, e.actor, e.mailbox ?? '-', e.action, e.result, e.reason ?? '-', e.ip ?? '-', e.country ?? '-'].join('\t')).join('\n'),
      );
    });
  audit
    .command('verify')
    .description('check the hash chain of the audit log (tampering, deleted lines)')
    .action(async () => {
      const r = (await cli.call('audit.verify', {})) as { ok: boolean; lines?: number; files?: number; file?: string; line?: number; problem?: string };
      cli.print(r, (c) => (r.ok ? c.green(`audit log intact: ${r.lines} lines in ${r.files} files`) : c.red(`audit log broken at ${r.file} line ${r.line}: ${r.problem}`)));
      if (!r.ok) process.exitCode = EXIT.DATAERR;
    });

  const providers = program.command('providers').description('the platform\'s provider policy: which providers exist and who may assign them');
  const printRights = (r: ProviderRow, c: ChalkInstance) =>
    `${r.name.padEnd(6)} ${r.enabled ? c.green('enabled ') : c.yellow('disabled')}  domain admins: ${r.domainAdmins ? 'yes' : 'no '}  end users: ${r.endUsers ? 'yes' : 'no '}  gateway: ${r.gatewayConfigured ? r.transport : c.yellow('not configured')}  mailboxes: ${r.mailboxes}`;
  providers.command('list').action(async () => {
    const r = (await cli.call('providers.list', {})) as { providers: ProviderRow[] };
    cli.print(r, (c) => r.providers.map((p) => printRights(p, c)).join('\n'));
  });
  const changeProvider = async (name: string, change: { enabled?: boolean; domainAdmins?: boolean; endUsers?: boolean }) => {
    if (!['totp', 'sms', 'email'].includes(name)) throw usage('the provider is totp, sms or email');
    const r = (await cli.call('providers.set', { provider: name, ...change })) as ProviderRow & { effect: string };
    const all = (await cli.call('providers.list', {})) as { providers: ProviderRow[] };
    const row = all.providers.find((p) => p.name === name)!;
    cli.print(r, (c) => `${printRights(row, c)}\n${r.effect}`);
  };
  providers.command('enable').argument('<provider>').action((name: string) => changeProvider(name, { enabled: true }));
  providers
    .command('disable')
    .argument('<provider>')
    .description('disable a provider; says how many mailboxes use it and what verify does for them')
    .action((name: string) => changeProvider(name, { enabled: false }));
  const yesNo = (v: string) => {
    if (v !== 'yes' && v !== 'no') throw usage('expected yes or no');
    return v === 'yes';
  };
  providers
    .command('set')
    .argument('<provider>')
    .option('--domain-admins <yes|no>', 'whether domain administrators may assign it', yesNo)
    .option('--end-users <yes|no>', 'whether end users may choose it', yesNo)
    .action((name: string, f: { domainAdmins?: boolean; endUsers?: boolean }) => {
      if (f.domainAdmins === undefined && f.endUsers === undefined) throw usage('providers set: give --domain-admins and/or --end-users');
      return changeProvider(name, f);
    });

  const admin = program.command('admin').description('domain administrators and their tokens');
  admin
    .command('add')
    .argument('<name>')
    .requiredOption('--domain <domain>', 'a domain this administrator manages (repeatable)', (v: string, all: string[] = []) => [...all, v])
    .description('issue a token (shown once) that lets NAME manage the mailboxes of the given domains')
    .action(async (name: string, f: { domain: string[] }) => {
      const r = (await cli.call('admin.add', { name, domains: f.domain })) as { name: string; domains: string[]; token: string };
      cli.print(r, (c) => `${c.bold(r.token)}\nthe token for ${r.name} (${r.domains.join(', ')}); it is shown only now: give it to them through a safe channel`);
    });
  admin.command('list').action(async () => {
    const r = (await cli.call('admin.list', {})) as { admins: { name: string; domains: string[]; createdAt: number }[] };
    cli.print(r, () => (r.admins.length === 0 ? 'no domain administrators' : r.admins.map((a) => `${a.name}\t${a.domains.join(',')}\t${new Date(a.createdAt).toISOString()}`).join('\n')));
  });
  admin
    .command('remove')
    .argument('<name>')
    .description('revoke an administrator\'s token')
    .action(async (name: string) => {
      const r = await cli.call('admin.remove', { name });
      cli.print(r, () => `removed ${name}; the token no longer works`);
    });

  const self = program
    .command('self')
    .description('end-user self-service for one mailbox (for webmail back ends; uses the hook socket)')
    .requiredOption('--user <address>', 'the mailbox, already authenticated by the caller');
  const selfUser = () => self.opts<{ user: string }>().user;
  type SelfView = { address: string; challenge: string; provider: string; phone: string | null; altEmail: string | null; totp: string; mayConfigure: boolean; allowedChallenges: string[]; allowedProviders: string[] };
  const printSelf = (v: SelfView) =>
    rows([
      ['mailbox', v.address],
      ['challenge', `${v.challenge} (may choose: ${v.allowedChallenges.join(', ')})`],
      ['provider', `${v.provider} (may choose: ${v.allowedProviders.join(', ')})`],
      ['phone', v.phone ?? '-'],
      ['alternate email', v.altEmail ?? '-'],
      ['totp', v.totp],
      ['may configure', v.mayConfigure ? 'yes' : 'no'],
    ]);
  self.command('show').action(async () => {
    const v = (await cli.callSelf('self.show', { user: selfUser() })) as SelfView;
    cli.print(v, () => printSelf(v));
  });
  self
    .command('set')
    .addOption(new Option('--challenge <mode>', 'own challenge mode (not weaker than the domain\'s)').choices(CHALLENGE))
    .addOption(new Option('--provider <provider>', 'own provider (among those the platform allows users)').choices(PROVIDER))
    .option('--phone <E164|none>', 'own phone number')
    .option('--alt-email <address|none>', 'own alternate address')
    .action(async (f: { challenge?: string; provider?: string; phone?: string; altEmail?: string }) => {
      const params: ParamsOf<'self.set'> = { user: selfUser() };
      if (f.challenge !== undefined) params.challenge = f.challenge;
      if (f.provider !== undefined) params.provider = f.provider;
      if (f.phone !== undefined) params.phone = f.phone === 'none' ? null : f.phone;
      if (f.altEmail !== undefined) params.altEmail = f.altEmail === 'none' ? null : f.altEmail;
      const v = (await cli.callSelf('self.set', params)) as SelfView;
      cli.print(v, () => printSelf(v));
    });
  self
    .command('enroll')
    .option('--restart', 'discard a pending secret and create a new one')
    .description('start own TOTP enrolment (prints the otpauth URI; confirm with self confirm)')
    .action(async (f: { restart?: boolean }) => {
      const e = (await cli.callSelf('self.enroll.start', { user: selfUser(), restart: f.restart === true })) as EnrolResult;
      if (cli.opts().json) printJson(e);
      else await showEnrolment(e, cli.chalk());
    });
  self
    .command('confirm')
    .description('confirm own TOTP enrolment with a code from the app, read from standard input')
    .action(async () => {
      const code = await askCode();
      const r = await cli.callSelf('self.enroll.confirm', { user: selfUser(), code });
      cli.print(r, (c) => c.green('activated'));
    });
  self
    .command('forget-locations')
    .description('forget own remembered IP addresses and countries')
    .action(async () => {
      const r = await cli.callSelf('self.forget-locations', { user: selfUser() });
      cli.print(r, () => 'remembered locations forgotten');
    });

  const provider = program.command('provider').description('code delivery gateways');
  provider
    .command('test')
    .argument('<provider>', 'sms or email')
    .requiredOption('--to <destination>', 'E.164 number (sms) or address (email) to send a test message to')
    .description('send a test message through the configured gateway and report success or the exact error')
    .action(async (name: string, f: { to: string }) => {
      if (name !== 'sms' && name !== 'email') throw usage('provider test: the provider is sms or email');
      const r = (await cli.call('provider.test', { provider: name, to: f.to })) as { transport: string; to: string; messageId: string | null; ms: number };
      cli.print(r, (c) => c.green(`sent a test message to ${r.to} through ${r.transport} in ${r.ms} ms${r.messageId ? ` (id ${r.messageId})` : ''}`));
    });

  return { program, cli };
}

interface ProviderRow {
  name: string;
  enabled: boolean;
  domainAdmins: boolean;
  endUsers: boolean;
  transport: string;
  gatewayConfigured: boolean;
  mailboxes: number;
}

interface DomainView {
  domain: string;
  stored: boolean;
  settings: Record<string, unknown>;
  effective: MailboxView['effective'];
  mailboxes: number;
}
interface GlobalView {
  settings: Record<string, unknown>;
  effective: MailboxView['effective'];
}

function formatDomain(d: DomainView, c: ChalkInstance): string {
  return rows([['domain', `${c.bold(d.domain)} (${d.mailboxes} stored mailboxes)`], ...formatEffective(d.effective, c)]);
}

async function showEnrolment(e: EnrolResult, c: ChalkInstance): Promise<void> {
  if (process.stdout.isTTY) {
    const { printQr } = await import('./qr.js');
    await printQr(e.otpauthUri);
  }
  out(rows([
    ['account', e.address],
    ['secret', c.bold(e.secretGrouped)],
    ['uri', e.otpauthUri],
    ['settings', `${e.algorithm}, ${e.digits} digits, ${e.period} s`],
    ['pending until', new Date(e.expiresAt).toISOString()],
  ]));
}

async function askCode(): Promise<string> {
  if (process.stdin.isTTY) {
    const { input } = await import('@inquirer/prompts');
    return input({ message: 'Code from the authenticator app:', validate: (v) => (/^\s*\d{6,8}\s*$/.test(v) ? true : 'enter the 6 to 8 digits the app shows') });
  }
  // Not a terminal: read one line, so that scripts can pipe the code in.
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    if (Buffer.concat(chunks).includes(0x0a) || Buffer.concat(chunks).length > 256) break;
  }
  const line = Buffer.concat(chunks).toString('utf8').split('\n')[0]?.trim() ?? '';
  if (line === '') throw usage('enroll: no code given on standard input (or use --no-confirm)');
  return line;
}

export async function runProgram(argv: string[]): Promise<number> {
  const { program, cli } = buildProgram();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; everything else commander refuses is a usage error.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      return EXIT.USAGE;
    }
    return reportError(err, cli.opts());
  }
}
