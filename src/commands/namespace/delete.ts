import { Args, Flags } from '@oclif/core';
import { adminClient, adminFlags } from '../../cli/admin-flags.js';
import { BaseCommand } from '../../cli/base-command.js';
import { UsageError } from '../../errors.js';

export default class NamespaceDelete extends BaseCommand {
  static override summary = 'Delete a namespace from the control plane';
  static override description =
    'Asks for confirmation on a terminal unless --yes is given; without a terminal, --yes is required.';
  static override examples = ['<%= config.bin %> namespace delete orders --yes'];
  static override enableJsonFlag = true;
  static override args = { name: Args.string({ description: 'Namespace name', required: true }) };
  static override flags = {
    ...adminFlags,
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation' }),
  };

  async run(): Promise<{ namespace: string; deletedVersion: number }> {
    const { args, flags } = await this.parse(NamespaceDelete);
    if (!flags.yes) {
      if (!process.stdin.isTTY)
        throw new UsageError(`refusing to delete '${args.name}' without confirmation`, 'pass --yes');
      const { confirm } = await import('@inquirer/prompts');
      if (!(await confirm({ message: `Delete namespace '${args.name}'?`, default: false }))) {
        this.logToStderr('nothing deleted');
        return { namespace: args.name, deletedVersion: 0 };
      }
    }
    const client = await adminClient(flags);
    try {
      const res = await client.delete(args.name);
      const deletedVersion = Number(res.deletedVersion);
      if (!this.jsonEnabled()) this.log(`${args.name}: deleted (was version ${deletedVersion})`);
      return { namespace: args.name, deletedVersion };
    } finally {
      client.close();
    }
  }
}
