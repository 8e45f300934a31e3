// memfa ping and memfa metrics: for monitoring, on the hook socket, so that a check run in the
// mail server's group (not an administrator's) can use them.
import type { Command } from 'commander';
import { MemfaError } from '../../protocol/errors.js';
import type { PingResult } from '../../protocol/results.js';
import type { Cli } from '../context.js';
import { usage } from '../io.js';

/** Failures that mean "no daemon serving now" to a health check, reported as DAEMON_UNAVAILABLE (69). */
const NOT_SERVING = new Set(['TIMEOUT', 'SHUTTING_DOWN']);

function seconds(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 300) throw usage('ping: --timeout takes whole seconds from 1 to 300');
  return n;
}

export function registerMonitoring(program: Command, cli: Cli): void {
  program
    .command('ping')
    .description('check that the daemon answers (hook socket): exit 0 with its version and uptime, 69 when it does not')
    .option('--timeout <seconds>', 'how long to wait for the answer', '5')
    .action(async (f: { timeout: string }) => {
      const timeoutMs = seconds(f.timeout) * 1000;
      let r: PingResult;
      try {
        r = await cli.callHook('ping', {}, { timeoutMs });
      } catch (err) {
        if (err instanceof MemfaError && NOT_SERVING.has(err.code)) {
          throw new MemfaError('DAEMON_UNAVAILABLE', err.message, { ...(err.hint !== undefined ? { hint: err.hint } : {}), data: { ...err.data, cause: err.code } });
        }
        throw err;
      }
      cli.print(r, () => `pong: memfa ${r.version}, up ${r.uptimeSeconds} s`);
    });

  program
    .command('metrics')
    .description('print the daemon\'s metrics in the Prometheus text format (hook socket)')
    .action(async () => {
      const r = await cli.callHook('metrics', {});
      cli.print(r, () => r.text);
    });
}
