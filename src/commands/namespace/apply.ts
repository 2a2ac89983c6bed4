import { Args, Flags } from '@oclif/core';
import { adminClient, adminFlags } from '../../cli/admin-flags.js';
import { BaseCommand } from '../../cli/base-command.js';
import { patternModuleFlag } from '../../cli/pattern-module-flag.js';
import { loadPatternModules } from '../../config/external-patterns.js';
import { applyPaths, type ApplyResult } from '../../client/namespace-sync.js';
import type { PrismErrorCode } from '../../errors.js';

export default class NamespaceApply extends BaseCommand {
  static override summary = 'Create or update namespaces on the control plane';
  static override description = `Validates the files locally first (nothing is sent when any is invalid), then applies each namespace. Re-applying an unchanged namespace reports "unchanged" and does not bump its version.
Exit codes: 0 success; with --detailed-exitcode 0 = nothing changed, 2 = something changed (or would, with --dry-run), 1 = error.`;
  static override examples = [
    '<%= config.bin %> namespace apply namespaces/',
    '<%= config.bin %> namespace apply orders.yaml --dry-run --detailed-exitcode',
  ];
  static override enableJsonFlag = true;
  static override strict = false;
  static override args = {
    paths: Args.string({ description: 'Files, directories or - for stdin', required: true }),
  };
  static override flags = {
    ...patternModuleFlag,
    ...adminFlags,
    'dry-run': Flags.boolean({
      description: 'Run the whole pipeline and show the result without storing anything',
    }),
    'detailed-exitcode': Flags.boolean({
      description: 'Exit 2 when something changed, 0 when nothing did, 1 on error',
    }),
  };
  private detailed = false;

  async run(): Promise<ApplyResult[]> {
    const { argv, flags } = await this.parse(NamespaceApply);
    await loadPatternModules(flags['pattern-module']);
    this.detailed = flags['detailed-exitcode'];
    const client = await adminClient(flags);
    try {
      const results = await applyPaths(client, argv as string[], { dryRun: flags['dry-run'] });
      if (!this.jsonEnabled()) for (const r of results) this.write(renderResult(r));
      if (this.detailed && results.some((r) => r.outcome !== 'unchanged')) process.exitCode = 2;
      return results;
    } finally {
      client.close();
    }
  }

  protected override exitCodeFor(code: PrismErrorCode): number {
    return this.detailed ? 1 : super.exitCodeFor(code);
  }
}

function renderResult(r: ApplyResult): string {
  const head = `${r.namespace}: ${r.outcome}${r.dryRun ? ' (dry run)' : ''} — version ${r.version}, partition ${r.partition}${r.ownerProxy ? `, proxy ${r.ownerProxy}` : ''}\n`;
  return (
    head +
    r.slots
      .map(
        (s) =>
          `  ${s.pattern}.${s.slot} → ${s.backend} ${s.endpoint}${s.credentialRef ? ` (credentials ${s.credentialRef})` : ''}\n`,
      )
      .join('')
  );
}
