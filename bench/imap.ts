// The IMAP section of the benchmark: what memfa adds to a mail-protocol login through Dovecot.
// Three Dovecot instances on loopback, started the same way (test/helpers/dovecot.ts):
//   password-only  the site's passwd-file passdb alone: the baseline;
//   memfa          memfa's shipped Lua passdb in front of it (examples/dovecot), logging in with an
//                  app password: the integration without a process per login;
//   cli            a checkpassword program that runs `memfa verify --no-send` and then checks the
//                  password: a process per login, for comparison.
// One login is connect, greeting, LOGIN, LOGOUT on a fresh connection; the three are timed in
// turn (rotating the order each round), so that drift in machine load hits all alike.
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { call } from '../src/client/call.js';
import { dovecotMissing, startDovecot, type DovecotOptions, type TestDovecot } from '../test/helpers/dovecot.js';
import { imapLogin } from '../test/helpers/mail-clients.js';
import { removeDir, tempDir, track, traversableBase } from './cleanup.js';
import { BIN, startBenchDaemon, writeDaemonConfig } from './daemon.js';
import { median, round } from './stats.js';

export interface ImapSettings {
  /** Measured logins through each of password-only and memfa (the CLI hook gets cliLogins). */
  logins: number;
  cliLogins: number;
  warmup: number;
}

export const IMAP_FULL: ImapSettings = { logins: 300, cliLogins: 40, warmup: 10 };
export const IMAP_QUICK: ImapSettings = { logins: 20, cliLogins: 4, warmup: 2 };

const say = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const APP_USER = 'app@imap.bench';
const CLI_USER = 'cli@imap.bench';
const PRIMARY = 'bench-primary-password';

/** The checkpassword(8) program: memfa verify --no-send, then the password against the users file. */
function checkpasswordScript(configFile: string): string {
  return `#!/bin/bash
# checkpassword(8) for the benchmark: a process per login. $1: the users file (user:{PLAIN}pw);
# then the checkpassword-reply program; user and password NUL-terminated on fd 3.
users=$1
shift
IFS= read -r -d '' user <&3 || exit 111
IFS= read -r -d '' pass <&3 || exit 111
MEMFA_CONFIG='${configFile}' '${process.execPath}' '${BIN}' verify --no-send --user="$user" --ip="$TCPREMOTEIP" </dev/null >/dev/null || exit 1
while IFS= read -r line; do
  if [ "$line" = "$user:{PLAIN}$pass" ]; then exec "$@"; fi
done <"$users"
exit 1
`;
}

async function timeLogin(port: number, user: string, password: string): Promise<number> {
  const t0 = performance.now();
  const r = await imapLogin(port, user, password);
  const ms = performance.now() - t0;
  if (!r.ok) throw new Error(`IMAP login of ${user} on port ${port} refused: ${r.reply}`);
  return ms;
}

/**
 * Fills imap_* fields of `out`. Without Dovecot (or its Lua passdb) the section is skipped and
 * notes.imap_skipped says why, with the command that installs what is missing.
 */
export async function imapPhase(settings: ImapSettings, out: Record<string, number>, notes: Record<string, unknown>): Promise<void> {
  const missing = dovecotMissing();
  if (missing !== null) {
    notes['imap_skipped'] = missing;
    say(`IMAP: skipped: ${missing}`);
    return;
  }
  const dir = await tempDir('mfi-', traversableBase());
  const configFile = await writeDaemonConfig(dir);
  const d = await startBenchDaemon(dir);
  const dovecots: TestDovecot[] = [];
  try {
    // Dovecot's unprivileged processes pass through it (the harness opens each instance's own).
    await chmod(dir, 0o711);
    await call(d.adminSocket, 'mailbox.set', { address: APP_USER, settings: { challenge: 'always' } });
    await call(d.adminSocket, 'mailbox.set', { address: CLI_USER, settings: { challenge: 'never' } });
    const ap = (await call(d.adminSocket, 'app-password.add', { address: APP_USER, name: 'bench' })) as { password: string };
    const script = path.join(dir, 'checkpassword-memfa');
    await writeFile(script, checkpasswordScript(configFile));
    await chmod(script, 0o755);
    const users = { [APP_USER]: PRIMARY, [CLI_USER]: PRIMARY };
    const start = async (name: string, o: Partial<DovecotOptions>) => {
      const sub = path.join(dir, name);
      await mkdir(sub);
      const dc = await startDovecot({ dir: sub, hookSocket: d.hookSocket, users, ...o });
      // Killed with the benchmark's other processes on SIGINT/SIGTERM.
      track(dc.proc);
      dovecots.push(dc);
      return dc;
    };
    const plain = await start('plain', { passdb: 'password-only' });
    const memfa = await start('memfa', {});
    // checkpassword runs in the auth process: Node needs more address space than Dovecot's
    // default_vsz_limit (256M) gives it. As root here, so that the program reaches the bench's
    // files whatever the permissions of $TMPDIR (a site gives the auth user the socket's group).
    const cli = await start('cli', { passdb: { checkpassword: script }, extraConfig: 'service auth {\n  user = root\n  vsz_limit = 2G\n}\n' });
    notes['imap_dovecot'] = spawnSync('dovecot', ['--version'], { encoding: 'utf8' }).stdout.trim();
    notes['imap_login'] = 'connect, greeting, LOGIN (plaintext), LOGOUT on a fresh TCP connection to 127.0.0.1, one at a time';
    notes['imap_variants'] = {
      password: 'passwd-file passdb only (primary password)',
      memfa: 'examples/dovecot/05-memfa.conf + memfa-passdb.lua before the passwd-file passdb; an app password (login.check allow)',
      cli: 'a checkpassword program running memfa verify --no-send (mode never: allow) then checking the password',
    };

    const runs: Record<'password' | 'memfa' | 'cli', number[]> = { password: [], memfa: [], cli: [] };
    const login = {
      password: () => timeLogin(plain.ports.imap, APP_USER, PRIMARY),
      memfa: () => timeLogin(memfa.ports.imap, APP_USER, ap.password),
      cli: () => timeLogin(cli.ports.imap, CLI_USER, PRIMARY),
    };
    say(`IMAP: ${settings.logins} logins each through password-only Dovecot and Dovecot with memfa, ${settings.cliLogins} through the memfa verify hook (+${settings.warmup} warm-up)`);
    const total = settings.warmup + settings.logins;
    const cliEvery = Math.max(1, Math.floor(settings.logins / settings.cliLogins));
    for (let i = 0; i < total; i++) {
      const measured = i >= settings.warmup;
      const withCli = i < settings.warmup || (i - settings.warmup) % cliEvery === 0;
      const order: ('password' | 'memfa' | 'cli')[] = i % 2 === 0 ? ['password', 'memfa'] : ['memfa', 'password'];
      if (withCli) order.splice(i % 3, 0, 'cli');
      for (const which of order) {
        const ms = await login[which]();
        if (measured && (which !== 'cli' || runs.cli.length < settings.cliLogins)) runs[which].push(ms);
      }
    }
    out['imap_login_ms'] = round(median(runs.password));
    out['imap_login_memfa_ms'] = round(median(runs.memfa));
    out['imap_login_cli_ms'] = round(median(runs.cli));
    out['imap_login_ratio'] = round(median(runs.memfa) / median(runs.password));
    out['imap_login_cli_ratio'] = round(median(runs.cli) / median(runs.password));
    out['imap_logins'] = runs.password.length;
    out['imap_cli_logins'] = runs.cli.length;
    say(
      `IMAP: password-only ${out['imap_login_ms']} ms, with memfa ${out['imap_login_memfa_ms']} ms (ratio ${out['imap_login_ratio']}), memfa verify hook ${out['imap_login_cli_ms']} ms (ratio ${out['imap_login_cli_ratio']})`,
    );
  } finally {
    for (const dc of dovecots) await dc.stop().catch(() => undefined);
    await d.stop();
    await removeDir(dir);
  }
}
