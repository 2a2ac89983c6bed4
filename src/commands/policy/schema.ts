import { BaseCommand } from '../../cli/base-command.js';
import { prismCedarSchema } from '../../auth/policy/model.js';

export default class PolicySchema extends BaseCommand {
  static override summary = 'Print the Cedar schema Prism validates policies against';
  static override description =
    'The entity types, actions and context of docs/policies.md, in Cedar schema syntax.';

  async run(): Promise<void> {
    await this.parse(PolicySchema);
    this.write(prismCedarSchema());
  }
}
