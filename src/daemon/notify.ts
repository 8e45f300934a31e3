// Readiness for systemd (Type=notify): READY=1 once every socket listens, STOPPING=1 when a stop
// begins. NOTIFY_SOCKET is an AF_UNIX datagram socket, which Node's dgram cannot send to; rather
// than a native addon (a build on every install), the daemon runs systemd's own systemd-notify,
// which exists wherever NOTIFY_SOCKET does. The unit needs NotifyAccess=all, as the message comes
// from that child. systemd-notify waits until systemd has read the message (systemd 246 and
// later), so the child is still alive, and so attributed to the unit, when systemd reads it.
// Without NOTIFY_SOCKET (not run by systemd, or Type=simple) nothing is run.
import { spawn } from 'node:child_process';
import type { Logger } from './logger.js';

/** systemd-notify waits up to 5 s for systemd; past this it is ended. */
const NOTIFY_TIMEOUT_MS = 10_000;

export interface ServiceManager {
  /** Every socket listens: the start is complete. Never rejects. */
  ready(): Promise<void>;
  /** A stop has begun. Never rejects. */
  stopping(): Promise<void>;
}

const NOT_MANAGED: ServiceManager = { ready: async () => undefined, stopping: async () => undefined };

export function serviceManager(log: Logger, env: NodeJS.ProcessEnv = process.env, command = 'systemd-notify'): ServiceManager {
  const socket = env['NOTIFY_SOCKET'];
  if (socket === undefined || socket === '') return NOT_MANAGED;
  const notify = (state: string, args: string[]) =>
    new Promise<void>((resolve) => {
      let done = false;
      let stderr = '';
      const finish = (error: string | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (error === null) log.debug('systemd-notified', { state });
        else {
          log.error('systemd-notify-failed', {
            state,
            socket,
            error,
            hint: 'install systemd-notify (package systemd), give the unit NotifyAccess=all, or run it with Type=simple',
          });
        }
        resolve();
      };
      const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
      const timer = setTimeout(() => child.kill('SIGKILL'), NOTIFY_TIMEOUT_MS);
      timer.unref();
      child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
      child.once('error', (err) => finish(err.message));
      child.once('close', (code, signal) => finish(code === 0 ? null : `${command} exited with ${code ?? signal}${stderr.trim() ? `: ${stderr.trim()}` : ''}`));
    });
  return {
    ready: () => notify('READY=1', ['--ready', `--pid=${process.pid}`]),
    stopping: () => notify('STOPPING=1', ['STOPPING=1']),
  };
}
