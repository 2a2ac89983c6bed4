import { BaseCommand } from '../../cli/base-command.js';
import { PrismError } from '../../errors.js';
import { endpoints, readState, stackAlive } from '../../localstack/state.js';

export default class DevEnv extends BaseCommand {
  static override summary = 'Print shell export lines for the running local stack';
  static override examples = ['eval "$(<%= config.bin %> dev env)"'];

  async run(): Promise<void> {
    await this.parse(DevEnv);
    const state = readState();
    if (!state || !stackAlive(state.pid)) {
      throw new PrismError('E_NOT_FOUND', 'no local stack is running', {
        hint: 'start one with `prismctl dev up`',
      });
    }
    const e = endpoints(state);
    this.log(`export PRISM_ADMIN_ENDPOINT=${e.admin}`);
    this.log(`export PRISM_PROXY_ENDPOINT=${e.proxy}`);
  }
}
