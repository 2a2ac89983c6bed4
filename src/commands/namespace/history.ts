import { Args } from '@oclif/core';
import { adminClient, adminFlags } from '../../cli/admin-flags.js';
import { BaseCommand } from '../../cli/base-command.js';

interface Entry {
  at: string;
  action: string;
  principal: string;
  versionBefore: number;
  versionAfter: number;
  source: string;
  diff: string;
}

export default class NamespaceHistory extends BaseCommand {
  static override summary = "Show a namespace's audit log: who changed what, when";
  static override enableJsonFlag = true;
  static override args = { name: Args.string({ description: 'Namespace name', required: true }) };
  static override flags = { ...adminFlags };

  async run(): Promise<Entry[]> {
    const { args, flags } = await this.parse(NamespaceHistory);
    const client = await adminClient(flags);
    try {
      const entries = (await client.history(args.name)).entries.map((e) => ({
        at: new Date(Number(e.atMs)).toISOString(),
        action: e.action,
        principal: e.principal,
        versionBefore: Number(e.versionBefore),
        versionAfter: Number(e.versionAfter),
        source: e.source,
        diff: e.diff,
      }));
      if (!this.jsonEnabled()) {
        for (const e of entries) {
          this.write(
            `${e.at}  ${e.action.padEnd(6)}  v${e.versionBefore} → v${e.versionAfter}  by ${e.principal}${e.source ? `  from ${e.source}` : ''}\n`,
          );
          if (e.diff) this.write(e.diff.replace(/^/gm, '    ').replace(/ +$/gm, '') + '\n');
        }
      }
      return entries;
    } finally {
      client.close();
    }
  }
}
