// One structured JSON line per event on stderr. Fields whose names suggest a secret are dropped
// here as a last line of defence; callers must not pass secrets in the first place.
//
// Under systemd, with stderr connected to the journal, each line starts with the sd-daemon(3)
// priority prefix (<7> debug ... <3> error): journald strips it and keeps the level as the
// entry's PRIORITY, so `journalctl -p notice` and the journal's colours follow the daemon's level.
// Elsewhere (a terminal, a file, a test's pipe) the lines are plain JSON.
import { fstatSync } from 'node:fs';

export type Level = 'debug' | 'info' | 'notice' | 'warn' | 'error';
export const LEVELS: readonly Level[] = ['debug', 'info', 'notice', 'warn', 'error'];
const RANK: Record<Level, number> = { debug: 10, info: 20, notice: 25, warn: 30, error: 40 };
/** The syslog priority of each level (LOG_DEBUG 7, LOG_INFO 6, LOG_NOTICE 5, LOG_WARNING 4, LOG_ERR 3). */
export const SYSLOG_PRIORITY: Readonly<Record<Level, number>> = { debug: 7, info: 6, notice: 5, warn: 4, error: 3 };
const SECRET_KEY = /(code|secret|token|pass|otp|key|uri)/i;

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  /** Normal but significant: the security events fail2ban acts on (denials, locks, blocks). */
  notice(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

function scrub(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    // Known-safe names that contain a suspicious substring.
    if (SECRET_KEY.test(k) && !['reason', 'exitCode', 'errorCode', 'rpcCode', 'keyFile', 'smppStatus'].includes(k)) continue;
    out[k] = v;
  }
  return out;
}

/**
 * Whether file descriptor `fd` is the journal stream systemd gave the service: JOURNAL_STREAM
 * holds the device and inode of that stream (systemd.exec(5)), and they must match the
 * descriptor's own, since a child whose stderr was redirected inherits the variable too.
 */
export function isJournalStream(env: NodeJS.ProcessEnv = process.env, fd = 2): boolean {
  const stream = env['JOURNAL_STREAM'];
  if (stream === undefined || !/^\d+:\d+$/.test(stream)) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return stream === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

export interface LoggerOptions {
  /** Start each line with its syslog priority, <N> (default: when stderr is the journal). */
  priorityPrefix?: boolean;
}

export function createLogger(level: Level, write: (line: string) => void = (l) => process.stderr.write(l), options: LoggerOptions = {}): Logger {
  const prefix = options.priorityPrefix ?? isJournalStream();
  const emit = (lvl: Level, event: string, fields: Record<string, unknown> = {}) => {
    if (RANK[lvl] < RANK[level]) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level: lvl, event, ...scrub(fields) }) + '\n';
    write(prefix ? `<${SYSLOG_PRIORITY[lvl]}>${line}` : line);
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    notice: (e, f) => emit('notice', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
  };
}
