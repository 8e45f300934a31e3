// What every command's action needs: the global options, colour, the domain administrator's
// token, the call to the right socket, and printing a result as JSON or for people.
import { readFileSync } from 'node:fs';
import { Chalk, type ChalkInstance } from 'chalk';
import type { Command } from 'commander';
import { call, type CallOptions } from '../client/call.js';
import type { MethodName, ParamsOf, ResultOf } from '../protocol/methods.js';
import type { MemfaConfig } from '../config/types.js';
import { configFor, out, printJson, socketFor, usage, useColor, type GlobalOptions } from './io.js';

export class Cli {
  constructor(private readonly program: Command) {}

  opts(): GlobalOptions {
    return this.program.opts<GlobalOptions>();
  }

  /** The configuration (--config, --data-dir, ...), for the commands that work on the store themselves. */
  config(): MemfaConfig {
    return configFor(this.opts());
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
  async call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    const token = this.token();
    if (token === undefined) return call(socketFor(this.opts(), 'admin'), method, params);
    return call(socketFor(this.opts(), 'hook'), method, params, { auth: token });
  }

  /** Monitoring: the hook socket (or --socket), which the mail server's group may use. */
  async callHook<M extends MethodName>(method: M, params: ParamsOf<M>, options: CallOptions = {}): Promise<ResultOf<M>> {
    return call(socketFor(this.opts(), 'hook'), method, params, options);
  }

  /** Self-service: always the self socket. */
  async callSelf<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    return call(socketFor(this.opts(), 'self'), method, params);
  }

  print(value: unknown, human: (c: ChalkInstance) => string): void {
    if (this.opts().json) printJson(value);
    else out(human(this.chalk()));
  }
}
