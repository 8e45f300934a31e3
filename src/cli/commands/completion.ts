// memfa completion bash|zsh: a completion script generated from this very command tree.
import { Argument, type Command } from 'commander';
import type { Cli } from '../context.js';

export function registerCompletion(program: Command, _cli: Cli): void {
  program
    .command('completion')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .description('print a shell completion script for bash or zsh (commands, options, their values; nothing asks the daemon)')
    .addHelpText('after', '\nInstall:\n  memfa completion bash > /etc/bash_completion.d/memfa\n  memfa completion zsh > /usr/local/share/zsh/site-functions/_memfa')
    .action(async (shell: 'bash' | 'zsh') => {
      const { completionTree } = await import('../completion/tree.js');
      const tree = completionTree(program);
      const script = shell === 'bash' ? (await import('../completion/bash.js')).bashScript(tree) : (await import('../completion/zsh.js')).zshScript(tree);
      process.stdout.write(script);
    });
}
