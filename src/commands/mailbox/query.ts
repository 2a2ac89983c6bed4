import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dataFlags } from '../../cli/data-flags.js';
import {
  filterFlags,
  filterFromFlags,
  mailboxClient,
  messageJson,
  messageLine,
} from '../../cli/mailbox-flags.js';
import { MailboxOrder, type MailboxMessage } from '../../gen/prism/data/v1/mailbox_pb.js';

/** Messages per request; the proxy's largest page. */
const PAGE = 1000;

export default class MailboxQuery extends BaseCommand {
  static override summary =
    "Search a namespace's mailbox: messages by time, ids, publisher and indexed headers";
  static override description =
    'Prints one line per message, newest first (--oldest for oldest first): published time, message id, topic, subject, tenant and payload size. With --json, the messages with their envelopes and a page token to continue from.';
  static override examples = [
    '<%= config.bin %> mailbox query -n orders --since 1h',
    '<%= config.bin %> mailbox query -n orders --since 7d --header order-id=123 --json',
    '<%= config.bin %> mailbox query -n orders --tenant acme --subject user:alice --limit 20 --oldest',
  ];
  static override enableJsonFlag = true;
  static override flags = {
    ...dataFlags,
    ...filterFlags,
    limit: Flags.integer({ description: 'Most messages to print', default: 100, min: 1 }),
    oldest: Flags.boolean({ description: 'Oldest first (default: newest first)' }),
    'page-token': Flags.string({ description: 'Continue after a previous --json run (its nextPageToken)' }),
  };

  async run(): Promise<{ messages: Record<string, unknown>[]; nextPageToken: string }> {
    const { flags } = await this.parse(MailboxQuery);
    const filter = filterFromFlags(flags);
    const order = flags.oldest ? MailboxOrder.OLDEST_FIRST : MailboxOrder.NEWEST_FIRST;
    const client = await mailboxClient(flags);
    const messages: MailboxMessage[] = [];
    let pageToken = flags['page-token'] ?? '';
    try {
      do {
        const limit = Math.min(PAGE, flags.limit - messages.length);
        const page = await client.query({ filter, order, limit, pageToken });
        messages.push(...page.messages);
        pageToken = page.nextPageToken;
      } while (pageToken !== '' && messages.length < flags.limit);
    } finally {
      client.close();
    }
    if (!this.jsonEnabled()) {
      for (const message of messages) this.log(messageLine(message));
      this.logToStderr(
        `${messages.length} message${messages.length === 1 ? '' : 's'}${pageToken ? ' (more: raise --limit or continue with --json and --page-token)' : ''}`,
      );
    }
    return { messages: messages.map(messageJson), nextPageToken: pageToken };
  }
}
