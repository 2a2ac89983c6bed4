import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { writeOutput } from '../../cli/output.js';
import { PrismError, UsageError } from '../../errors.js';
import { parseBackendFlags, renderNamespaceInit, type InitRequest } from '../../config/init.js';
import { renderReport } from '../../config/report-format.js';
import { BACKEND_NAMES, BACKENDS, backendFitsSlot, PATTERN_TYPES, PATTERNS } from '../../config/registry.js';

export default class NamespaceInit extends BaseCommand {
  static override summary = 'Write a new, valid namespace file from templates';
  static override description =
    'Run without flags on a terminal to be asked for each choice. The result is validated before it is written, and an existing file is never overwritten without --force.';
  static override examples = [
    '<%= config.bin %> namespace init orders --pattern keyvalue --pattern producer -o orders.yaml',
    '<%= config.bin %> namespace init orders --pattern keyvalue --backend cache.store=postgres',
  ];
  static override args = {
    name: Args.string({ description: 'Namespace name' }),
  };
  static override flags = {
    pattern: Flags.string({
      char: 'p',
      description: 'Pattern type to include (repeatable)',
      options: PATTERN_TYPES,
      multiple: true,
    }),
    backend: Flags.string({
      char: 'b',
      description: 'Backend for a slot: <pattern>.<slot>=<backend> (repeatable)',
      multiple: true,
    }),
    team: Flags.string({ char: 't', description: 'Owning team (default: the namespace name)' }),
    description: Flags.string({ description: 'One-line description' }),
    output: Flags.string({ char: 'o', description: 'File to write (default: stdout)' }),
    force: Flags.boolean({ description: 'Overwrite an existing file' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NamespaceInit);
    const interactive = !flags.pattern && process.stdin.isTTY && process.stdout.isTTY;
    const request: InitRequest = interactive
      ? await askForRequest(args.name, flags.team)
      : {
          namespace: required(
            args.name,
            'namespace name',
            'prismctl namespace init orders --pattern keyvalue',
          ),
          team: flags.team ?? (args.name as string),
          description: flags.description,
          patternTypes: flags.pattern ?? [],
          backends: parseBackendFlags(flags.backend ?? []),
        };
    const { yaml, report } = await renderNamespaceInit(request);
    if (!report.valid) {
      process.stderr.write(renderReport(report, 'text'));
      throw new PrismError(
        'E_INVALID_NAMESPACE',
        'the requested namespace would not be valid; nothing was written',
      );
    }
    await writeOutput(yaml, flags.output, {
      force: flags.force,
      overwriteHint: 'pass --force to overwrite it',
    });
    if (flags.output)
      this.logToStderr(`wrote ${flags.output}; next: prismctl namespace validate ${flags.output}`);
  }
}

function required(value: string | undefined, what: string, example: string): string {
  if (!value) throw new UsageError(`missing ${what}`, `for example: ${example}`);
  return value;
}

async function askForRequest(name: string | undefined, team: string | undefined): Promise<InitRequest> {
  const { input, checkbox, select } = await import('@inquirer/prompts');
  const namespace =
    name ??
    (await input({
      message: 'Namespace name',
      validate: (v) => /^[a-z][a-z0-9-]{1,62}$/.test(v) || 'lowercase letters, digits and hyphens',
    }));
  const owner = team ?? (await input({ message: 'Owning team', default: namespace }));
  const patternTypes = await checkbox({
    message: 'Patterns',
    choices: PATTERN_TYPES.map((t) => ({ value: t, name: `${t} — ${PATTERNS[t]!.description}` })),
    required: true,
  });
  const backends: Record<string, string> = {};
  for (const type of patternTypes) {
    for (const [slot, spec] of Object.entries(PATTERNS[type]!.slots)) {
      if (!spec.required) continue;
      const fit = BACKEND_NAMES.filter((b) => backendFitsSlot(BACKENDS[b]!, spec));
      backends[`${type}.${slot}`] = await select({
        message: `${type}: backend for slot '${slot}'`,
        choices: fit.map((b) => ({ value: b })),
      });
    }
  }
  return { namespace, team: owner, patternTypes, backends };
}
