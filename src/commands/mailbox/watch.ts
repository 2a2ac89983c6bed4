import { Flags } from '@oclif/core';
import { status, type ServiceError } from '@grpc/grpc-js';
import { BaseCommand } from '../../cli/base-command.js';
import { dataFlags } from '../../cli/data-flags.js';
import {
  filterFlags,
  filterFromFlags,
  mailboxClient,
  messageJson,
  messageLine,
} from '../../cli/mailbox-flags.js';
import { durationSeconds } from '../../cli/values.js';
import type { MailboxWatchResponse } from '../../gen/prism/data/v1/mailbox_pb.js';

export default class MailboxWatch extends BaseCommand {
  static override summary = 'Print messages as the mailbox stores them, from now on';
  static override description =
    'One line per message that matches the filter (or, with --json, one message per line as JSON), in the order they are stored. Messages stored before the watch started are not shown: query them. Stops after --max messages, after --timeout without one, or on Ctrl-C.';
  static override examples = [
    '<%= config.bin %> mailbox watch -n orders --header order-id=123',
    '<%= config.bin %> mailbox watch -n orders --tenant acme --json --max 10',
  ];
  static override flags = {
    ...dataFlags,
    ...filterFlags,
    max: Flags.integer({ description: 'Stop after this many messages', min: 1 }),
    timeout: Flags.string({ description: 'Stop when no message arrived for this long (default: never)' }),
    json: Flags.boolean({ description: 'Print each message as one line of JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(MailboxWatch);
    const idleMs = durationSeconds(flags.timeout, 'timeout') * 1000;
    const client = await mailboxClient(flags);
    const stream = client.watch({ filter: filterFromFlags(flags) });
    let received = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        let idle: NodeJS.Timeout | undefined;
        const arm = () => {
          clearTimeout(idle);
          if (idleMs > 0) idle = setTimeout(() => stream.cancel(), idleMs);
        };
        const onSignal = () => stream.cancel();
        process.once('SIGINT', onSignal);
        const done = (fn: () => void) => {
          clearTimeout(idle);
          process.off('SIGINT', onSignal);
          fn();
        };
        stream.on('metadata', () => {
          this.logToStderr('watching');
          arm();
        });
        stream.on('data', (res: MailboxWatchResponse) => {
          received++;
          const message = res.message!;
          this.log(flags.json ? JSON.stringify(messageJson(message)) : messageLine(message));
          if (flags.max && received >= flags.max) stream.cancel();
          else arm();
        });
        stream.on('error', (err: ServiceError) =>
          done(() => (err.code === status.CANCELLED ? resolve() : reject(client.streamError(err)))),
        );
        stream.on('end', () => done(resolve));
      });
      this.logToStderr(`${received} message${received === 1 ? '' : 's'} watched`);
    } finally {
      client.close();
    }
  }
}
