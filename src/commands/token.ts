import { BaseCommand } from '../cli/base-command.js';
import { bearerTokenFor } from '../auth/bearer.js';
import { PrismError } from '../errors.js';

export default class Token extends BaseCommand {
  static override summary = 'Print a fresh access token for scripts (refreshed when about to expire)';
  static override examples = ['grpcurl -H "authorization: Bearer $(<%= config.bin %> token)" ...'];

  async run(): Promise<void> {
    await this.parse(Token);
    const token = await bearerTokenFor(undefined);
    if (!token) throw new PrismError('E_UNAUTHENTICATED', 'not logged in', { hint: 'run prismctl login' });
    process.stdout.write(`${token}\n`);
  }
}
