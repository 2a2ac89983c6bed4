import { createLogger } from '../../logging.js';
import { BaseCommand } from '../../cli/base-command.js';
import { defaultNamespacePaths } from '../../localstack/defaults.js';
import { portsFrom, stackFlags } from '../../localstack/flags.js';
import { serveEmbedded } from '../../localstack/serve.js';

export default class DevServeEmbedded extends BaseCommand {
  static override hidden = true;
  static override summary = 'Run the embedded stack in this process (started by `dev up`)';
  static override flags = { ...stackFlags };

  async run(): Promise<void> {
    const { flags } = await this.parse(DevServeEmbedded);
    await serveEmbedded({
      ports: portsFrom(flags),
      persist: flags.persist,
      namespacePaths: flags.namespaces ?? defaultNamespacePaths(this.config.root),
      foreground: false,
      logger: createLogger('prism-dev'),
      version: this.config.version,
    });
  }
}
