import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dataClient, dataFlags } from '../../cli/data-flags.js';

export default class SessionRevoke extends BaseCommand {
  static override summary =
    'Revoke a caller session: its leased backend users and Vault token, on every proxy';
  static override description =
    'The proxy that holds the session revokes it (or, when that proxy is gone, the one answering does) and every worker closes its connections; the caller’s next call opens a new session. Needs admin on the namespace.';
  static override examples = [
    '<%= config.bin %> session revoke -n orders 0b9f6c1e-7d0e-4c57-9a39-1f0c2e1ab5d2',
  ];
  static override enableJsonFlag = true;
  static override args = {
    id: Args.string({ required: true, description: 'Session id (from session list)' }),
  };
  static override flags = { ...dataFlags };

  async run(): Promise<{ namespace: string; id: string; revokedLeases: number }> {
    const { args, flags } = await this.parse(SessionRevoke);
    const client = await dataClient(flags);
    try {
      const res = await client.revokeCallerSession(args.id);
      if (!this.jsonEnabled())
        this.log(`revoked ${args.id} (${res.revokedLeases} lease${res.revokedLeases === 1 ? '' : 's'})`);
      return { namespace: flags.namespace, id: args.id, revokedLeases: res.revokedLeases };
    } finally {
      client.close();
    }
  }
}
