// Test harness: a real Dovecot (Debian's dovecot-imapd, -pop3d, -managesieved, -auth-lua) on
// loopback ports in a temporary directory, configured with memfa's shipped passdb
// (examples/dovecot/) in front of a passwd-file passdb that holds the primary passwords. The
// benchmark also starts it without memfa, and with a checkpassword hook instead.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { REPO } from './daemon.js';

export const SHIPPED_LUA = path.join(REPO, 'examples', 'dovecot', 'memfa-passdb.lua');
export const SHIPPED_CONF = path.join(REPO, 'examples', 'dovecot', '05-memfa.conf');
const INSTALL = 'apt-get install -y dovecot-imapd dovecot-pop3d dovecot-managesieved dovecot-submissiond dovecot-auth-lua lua-socket lua-cjson';

/** Why Dovecot cannot run here (with the command that installs it), or null when it can. */
export function dovecotMissing(): string | null {
  const which = spawnSync('sh', ['-c', 'command -v dovecot && command -v doveadm'], { encoding: 'utf8' });
  if (which.status !== 0) return `Dovecot is not installed (${INSTALL})`;
  if (!existsSync('/usr/lib/dovecot/modules/auth/libauthdb_lua.so')) return `Dovecot's Lua passdb is not installed (${INSTALL})`;
  if (!existsSync('/usr/share/lua/5.4/socket/unix.lua') && !existsSync('/usr/lib/x86_64-linux-gnu/lua/5.4/socket/unix.so')) {
    return `lua-socket is not installed (${INSTALL})`;
  }
  if (process.getuid?.() !== 0) return 'Dovecot is started as root by these tests (it drops privileges itself)';
  return null;
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/**
 * `n` distinct free ports on 127.0.0.1: each is held until all are found, since a port asked for
 * right after another was closed may be the same one again (Dovecot then refuses a duplicate
 * listener).
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}

export interface TestDovecot {
  dir: string;
  /** Dovecot's master process (in the foreground, -F). */
  proc: ChildProcess;
  ports: { imap: number; pop3: number; sieve: number; submission: number };
  /** `doveadm auth test`: whether the passdb chain accepts (user, password) for a service and client address. */
  authTest(user: string, password: string, opts: { service: string; ip: string }): Promise<{ ok: boolean; output: string }>;
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface DovecotOptions {
  dir: string;
  hookSocket: string;
  /** Primary passwords, as the site's own passdb holds them. */
  users: Record<string, string>;
  /** Passed to the Lua passdb through import_environment. */
  timeoutSeconds?: number;
  /** Turn Dovecot's auth cache on, as many sites do (the shipped passdb must not be cached). */
  authCache?: boolean;
  /**
   * memfa: the shipped 05-memfa.conf before the passwd-file passdb (the default);
   * password-only: the passwd-file passdb alone; checkpassword: a checkpassword(8) program alone
   * (it gets the users file as its first argument and checks the password itself).
   */
  passdb?: 'memfa' | 'password-only' | { checkpassword: string };
  /** Appended to the configuration. */
  extraConfig?: string;
}

/** Where the passwd-file of a started instance is (for a checkpassword program). */
export const USERS_FILE = 'users';

function passdbs(opts: DovecotOptions, dir: string): string {
  const site = `passdb {\n  driver = passwd-file\n  args = scheme=PLAIN ${dir}/${USERS_FILE}\n}\n`;
  const p = opts.passdb ?? 'memfa';
  if (p === 'memfa') return `!include ${dir}/05-memfa.conf\n${site}`;
  if (p === 'password-only') return site;
  return `passdb {\n  driver = checkpassword\n  args = ${p.checkpassword} ${dir}/${USERS_FILE}\n}\n`;
}

/** The shipped 05-memfa.conf with its two installation paths pointed at this test's files. */
async function memfaConf(hookSocket: string, timeoutSeconds: number | undefined): Promise<string> {
  const shipped = await readFile(SHIPPED_CONF, 'utf8');
  if (!shipped.includes('/etc/dovecot/memfa-passdb.lua') || !shipped.includes('MEMFA_HOOK_SOCKET=/run/memfa/hook.sock')) {
    throw new Error('examples/dovecot/05-memfa.conf no longer names the paths this harness replaces');
  }
  let conf = shipped.replaceAll('/etc/dovecot/memfa-passdb.lua', SHIPPED_LUA).replaceAll('MEMFA_HOOK_SOCKET=/run/memfa/hook.sock', `MEMFA_HOOK_SOCKET=${hookSocket}`);
  if (timeoutSeconds !== undefined) conf = conf.replace(`MEMFA_HOOK_SOCKET=${hookSocket}`, `MEMFA_HOOK_SOCKET=${hookSocket} MEMFA_TIMEOUT_SECONDS=${timeoutSeconds}`);
  return conf;
}

function waitForPort(port: number, proc: ChildProcess, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (proc.exitCode !== null) return reject(new Error(`dovecot exited with ${proc.exitCode}`));
      const s = net.connect(port, '127.0.0.1');
      s.once('data', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`dovecot did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startDovecot(opts: DovecotOptions): Promise<TestDovecot> {
  const dir = path.join(opts.dir, 'dovecot');
  // Dovecot's own processes (users dovecot, dovenull, nobody) must pass through the test's
  // directory; what memfa keeps there (data 0700, run 0750) stays closed to them.
  await chmod(opts.dir, 0o711);
  for (const sub of ['run', 'state', 'mail']) await mkdir(path.join(dir, sub), { recursive: true });
  // Mail processes run as the userdb's uid (nobody); the temporary tree is theirs to write.
  await chmod(path.join(dir, 'mail'), 0o777);
  const [imap, pop3, sieve, submission] = await freePorts(4);
  const ports = { imap: imap!, pop3: pop3!, sieve: sieve!, submission: submission! };
  await writeFile(path.join(dir, USERS_FILE), Object.entries(opts.users).map(([u, p]) => `${u}:{PLAIN}${p}`).join('\n') + '\n', { mode: 0o644 });
  await writeFile(path.join(dir, '05-memfa.conf'), await memfaConf(opts.hookSocket, opts.timeoutSeconds));
  const conf = `# memfa test instance
base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = memfa-test-${path.basename(opts.dir)}
log_path = ${dir}/dovecot.log
auth_verbose = yes
# Failed logins answer at once: the tests make many on purpose. Nor is there an auth penalty, which
# would delay each failure after the first from one address by up to 15 s: the auth process
# cannot open anvil's penalty socket (mode 0), and Dovecot then runs without penalties.
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
protocols = imap pop3 sieve submission
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:${dir}/mail/%u
${opts.authCache ? 'auth_cache_size = 10M\nauth_cache_ttl = 1 hour\nauth_cache_negative_ttl = 1 hour\n' : ''}submission_relay_host = 127.0.0.1
submission_relay_port = 9
hostname = mail.test
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${ports.imap}
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = ${ports.pop3}
  }
}
service managesieve-login {
  inet_listener sieve {
    address = 127.0.0.1
    port = ${ports.sieve}
  }
}
service submission-login {
  inet_listener submission {
    address = 127.0.0.1
    port = ${ports.submission}
  }
}
${passdbs(opts, dir)}userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${dir}/mail/%u
}
${opts.extraConfig ?? ''}`;
  const confFile = path.join(dir, 'dovecot.conf');
  await writeFile(confFile, conf);
  const proc = spawn('dovecot', ['-F', '-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  try {
    await waitForPort(ports.imap, proc);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${output}\n${await readFile(path.join(dir, 'dovecot.log'), 'utf8').catch(() => '')}`);
  }
  return {
    dir,
    proc,
    ports,
    authTest(user, password, o) {
      return new Promise((resolve) => {
        const child = spawn('doveadm', ['-c', confFile, 'auth', 'test', '-x', `service=${o.service}`, '-x', `rip=${o.ip}`, user], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        // The password on standard input, not in argv (doveadm asks for it when it is not given).
        child.stdin.end(password + '\n');
        child.on('close', () => resolve({ ok: /auth succeeded/.test(out) && !/^\s*nologin/m.test(out), output: out }));
      });
    },
    log: () => readFile(path.join(dir, 'dovecot.log'), 'utf8').catch(() => ''),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
