import { Args } from '@oclif/core';
import { adminClient } from '../cli/admin-flags.js';
import { BaseCommand } from '../cli/base-command.js';
import { complete } from '../cli/completion.js';
import { DEFAULT_ADMIN_ENDPOINT } from '../client/endpoints.js';

/** How long completion waits for the control plane before offering no namespace names. */
const ADMIN_TIMEOUT_MS = 1000;

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

/** Namespace names from the control plane, or none when it does not answer in time. */
async function namespacesFrom(endpoint: string | undefined): Promise<string[]> {
  const client = await adminClient(endpoint ?? process.env.PRISM_ADMIN_ENDPOINT ?? DEFAULT_ADMIN_ENDPOINT);
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ADMIN_TIMEOUT_MS);
    });
    const response = await Promise.race([client.list(), timeout]);
    return response.namespaces.map((namespace) => namespace.name).sort();
  } catch {
    return [];
  } finally {
    clearTimeout(timer);
    client.close();
  }
}
