// memfa provider test: the code delivery gateways.
import type { Command } from 'commander';
import { CODE_PROVIDERS, isMember } from '../../protocol/vocabulary.js';
import type { Cli } from '../context.js';
import { formatProviderTest } from '../format.js';
import { usage } from '../io.js';

export function registerGateways(program: Command, cli: Cli): void {
  const provider = program.command('provider').description('code delivery gateways');
  provider
    .command('test')
    .argument('<provider>', CODE_PROVIDERS.join(' or '))
    .requiredOption('--to <destination>', 'mobile number with + and the country code (sms) or address (email) to send a test message to')
    .description('send a test message through the configured gateway and report success or the exact error')
    .action(async (name: string, f: { to: string }) => {
      if (!isMember(CODE_PROVIDERS, name)) throw usage(`provider test: the provider is ${CODE_PROVIDERS.join(' or ')}`);
      const r = await cli.call('provider.test', { provider: name, to: f.to });
      cli.print(r, (c) => formatProviderTest(r, c));
    });
}
