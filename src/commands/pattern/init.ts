import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { scaffoldPattern, type PatternInitResult } from '../../patterns/scaffold.js';

export default class PatternInit extends BaseCommand {
  static override summary = 'Write a new pattern package built with prismctl/sdk';
  static override description =
    'Copies templates/pattern/ (package.json depending on prismctl, src/index.ts using only prismctl/sdk, a conformance test and a README) into a new directory, with the package name and pattern type filled in. docs/sdk.md walks through the rest.';
  static override enableJsonFlag = true;
  static override examples = [
    '<%= config.bin %> pattern init rate-limiter',
    '<%= config.bin %> pattern init @acme/prism-quota --type quota --dir quota',
  ];
  static override args = {
    name: Args.string({ description: 'npm package name of the pattern', required: true }),
  };
  static override flags = {
    type: Flags.string({
      description:
        'Pattern type namespaces write (default: the package name without scope and prism- prefix)',
    }),
    dir: Flags.string({ description: 'Directory to write (default: the package name without scope)' }),
    force: Flags.boolean({ description: 'Write into a directory that is not empty' }),
  };

  async run(): Promise<PatternInitResult> {
    const { args, flags } = await this.parse(PatternInit);
    const result = scaffoldPattern({
      name: args.name,
      ...(flags.type !== undefined ? { type: flags.type } : {}),
      ...(flags.dir !== undefined ? { dir: flags.dir } : {}),
      force: flags.force,
    });
    if (!this.jsonEnabled())
      this.log(
        `wrote pattern ${result.type} to ${result.dir}: ${result.files.join(', ')}\nnext: cd ${result.dir} && npm install && npm test`,
      );
    return result;
  }
}
