import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dataFlags } from '../../cli/data-flags.js';
import { filterFlags, filterFromFlags, mailboxClient } from '../../cli/mailbox-flags.js';

export default class MailboxDelete extends BaseCommand {
  static override summary = 'Delete stored messages by id, or every message that matches a filter';
  static override description =
    'Give message ids, or filter flags (at least one): not both. Deleting an id that is not stored is not an error. Needs write on the namespace.';
  static override examples = [
    '<%= config.bin %> mailbox delete -n orders 0193a5c4-7c1e-7b2a-9f3e-2d4c5b6a7e8f',
    '<%= config.bin %> mailbox delete -n orders --tenant acme --until 30d',
  ];
  static override enableJsonFlag = true;
  static override strict = false;
  static override args = { ids: Args.string({ description: 'Message ids (several allowed)' }) };
  static override flags = { ...dataFlags, ...filterFlags };

  async run(): Promise<{ deleted: number }> {
    const { argv, flags } = await this.parse(MailboxDelete);
    const messageIds = argv as string[];
    const client = await mailboxClient(flags);
    try {
      const res = await client.delete(
        messageIds.length > 0 ? { messageIds } : { filter: filterFromFlags(flags) },
      );
      const deleted = Number(res.deleted);
      if (!this.jsonEnabled()) this.log(`${deleted} message${deleted === 1 ? '' : 's'} deleted`);
      return { deleted };
    } finally {
      client.close();
    }
  }
}
