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
    const docker = state.docker;
    // A shell that evaluated the env of an earlier TLS stack would otherwise dial this one with TLS.
    this.log(state.tls ? `export PRISM_TLS_CA_FILE=${state.tls.caFile}` : 'unset PRISM_TLS_CA_FILE');
    if (state.issuer) this.log(`export PRISM_OIDC_ISSUER=${state.issuer}`);
    for (const c of docker?.components ?? []) {
      const url = backendUrl(c.name, c.ports);
      if (url) this.log(`export ${url[0]}=${url[1]}`);
    }
  }
}

/** Direct URLs for the Docker stack's backends, for tools that talk to them without Prism. */
function backendUrl(name: string, ports: Record<string, number>): [string, string] | undefined {
  switch (name) {
    case 'redis':
      return ['PRISM_DEV_REDIS_URL', `redis://127.0.0.1:${ports.redis}`];
    case 'nats':
      return ['PRISM_DEV_NATS_URL', `nats://127.0.0.1:${ports.client}`];
    case 'postgres':
      return ['PRISM_DEV_POSTGRES_URL', `postgres://127.0.0.1:${ports.postgres}/prism`];
    case 'kafka':
      return ['PRISM_DEV_KAFKA_BROKERS', `127.0.0.1:${ports.broker}`];
    case 'vault':
      return ['VAULT_ADDR', `http://127.0.0.1:${ports.api}`];
    default:
      return undefined;
  }
}
