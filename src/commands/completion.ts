import { Args } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { COMPLETION_SCRIPTS, COMPLETION_SHELLS } from '../cli/completion-scripts.js';

export default class Completion extends BaseCommand {
  static override summary = 'Print the shell completion script for bash, zsh or fish';
  static override description =
    'Commands, subcommands, flags and flag values complete as you type; namespace names (the -n flag, ' +
    'namespace get/delete/history) come from the control plane when one answers within a second ' +
    '(--admin on the line, PRISM_ADMIN_ENDPOINT, or the default endpoint).';
  static override examples = [
    { description: 'bash, this shell only', command: 'source <(<%= config.bin %> completion bash)' },
    {
      description: 'bash, every new shell',
      command: "echo 'source <(prismctl completion bash)' >> ~/.bashrc",
    },
    { description: 'zsh (after compinit)', command: "echo 'source <(prismctl completion zsh)' >> ~/.zshrc" },
    {
      description: 'fish',
      command: '<%= config.bin %> completion fish > ~/.config/fish/completions/prismctl.fish',
    },
  ];
  static override args = {
    shell: Args.string({
      description: 'Shell to complete in',
      options: [...COMPLETION_SHELLS],
      required: true,
    }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(Completion);
    this.write(COMPLETION_SCRIPTS[args.shell as keyof typeof COMPLETION_SCRIPTS]);
  }
}
