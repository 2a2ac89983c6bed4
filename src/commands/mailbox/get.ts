import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dataFlags } from '../../cli/data-flags.js';
import { mailboxClient, messageJson, messageLine } from '../../cli/mailbox-flags.js';

export default class MailboxGet extends BaseCommand {
  static override summary = 'Get one stored message by id (exit 1 when it is not stored)';
  static override description =
    'Prints the message line (time, id, topic, subject, tenant, size) on stderr and the raw payload on stdout; with --json, the message with its whole envelope.';
  static override examples = [
    '<%= config.bin %> mailbox get -n orders 0193a5c4-7c1e-7b2a-9f3e-2d4c5b6a7e8f --json',
  ];
  static override enableJsonFlag = true;
  static override args = { id: Args.string({ required: true, description: 'Message id' }) };
  static override flags = { ...dataFlags };

  async run(): Promise<Record<string, unknown>> {
    const { args, flags } = await this.parse(MailboxGet);
    const client = await mailboxClient(flags);
    try {
      const { message } = await client.get(args.id);
      if (!this.jsonEnabled() && message) {
        this.logToStderr(messageLine(message));
        process.stdout.write(message.envelope?.payload ?? new Uint8Array());
      }
      return message ? messageJson(message) : {};
    } finally {
      client.close();
    }
  }
}
