import { Args } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { complete } from '../cli/completion.js';
import { namespacesFrom } from '../cli/completion-namespaces.js';

/**
 * Completion candidates. bin/run.js answers `prismctl complete -- <words>` (what the shell
 * scripts run) through src/cli/completion-main.ts without starting oclif; this command is the same
 * answer for any other form, and for a checkout without oclif.manifest.json.
 */
export default class Complete extends BaseCommand {
  static override hidden = true;
  static override summary =
    'Completion candidates for the words typed so far (used by the completion scripts)';
  static override strict = false;
  static override args = {
    words: Args.string({ description: 'Words after prismctl; the last is being typed' }),
  };

  async run(): Promise<void> {
    const words = this.argv[0] === '--' ? this.argv.slice(1) : this.argv;
    const answer = await complete(
      { config: this.config, namespaces: namespacesFrom },
      words.length ? words : [''],
    );
    if (answer) this.write(`${answer}\n`);
  }
}
