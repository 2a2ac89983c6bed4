import { Args } from '@oclif/core';
import { adminClient, adminFlags } from '../../cli/admin-flags.js';
import { BaseCommand } from '../../cli/base-command.js';
import { patternModuleFlag } from '../../cli/pattern-module-flag.js';
import { loadPatternModules } from '../../config/external-patterns.js';
import { diffPaths, type DiffResult } from '../../client/namespace-sync.js';

export default class NamespaceDiff extends BaseCommand {
  static override summary = 'Show how local namespace files differ from the control plane';
  static override description =
    'A unified diff of the canonical YAML, server → local. Exit codes: 0 no difference, 1 differences, 2 error.';
  static override examples = ['<%= config.bin %> namespace diff namespaces/'];
  static override enableJsonFlag = true;
  static override strict = false;
  static override args = {
    paths: Args.string({ description: 'Files, directories or - for stdin', required: true }),
  };
  static override flags = { ...adminFlags, ...patternModuleFlag };

  async run(): Promise<DiffResult[]> {
    const { argv, flags } = await this.parse(NamespaceDiff);
    await loadPatternModules(flags['pattern-module']);
    const client = await adminClient(flags);
    try {
      const results = await diffPaths(client, argv as string[]);
      if (!this.jsonEnabled()) for (const r of results) if (r.diff) this.write(r.diff);
      process.exitCode = results.some((r) => r.diff) ? 1 : 0;
      return results;
    } finally {
      client.close();
    }
  }

  protected override exitCodeFor(): number {
    return 2;
  }
}
