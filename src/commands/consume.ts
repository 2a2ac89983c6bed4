import { Args, Flags } from '@oclif/core';
import { toJson } from '@bufbuild/protobuf';
import { status, type ServiceError } from '@grpc/grpc-js';
import { BaseCommand } from '../cli/base-command.js';
import { dataClient, dataFlags } from '../cli/data-flags.js';
import { durationSeconds } from '../cli/values.js';
import { EnvelopeSchema } from '../gen/prism/data/v1/envelope_pb.js';
import type { SubscribeResponse } from '../gen/prism/data/v1/messaging_pb.js';

export default class Consume extends BaseCommand {
  static override summary = 'Consume messages in a consumer group through the proxy, acknowledging each';
  static override description =
    'Prints each payload on its own line (or, with --json, one envelope per line as JSON) and acknowledges it. Stops after --max messages or when no message arrived for --timeout.';
  static override examples = [
    '<%= config.bin %> consume -n playground playground.events --group cli --max 10',
  ];
  static override args = { topic: Args.string({ required: true, description: 'Topic' }) };
  static override flags = {
    ...dataFlags,
    group: Flags.string({ char: 'g', description: 'Consumer group', required: true }),
    max: Flags.integer({ description: 'Stop after this many messages', min: 1 }),
    timeout: Flags.string({ description: 'Stop when no message arrived for this long', default: '10s' }),
    json: Flags.boolean({ description: 'Print each envelope as one line of JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Consume);
    const idleMs = durationSeconds(flags.timeout, 'timeout') * 1000;
    const client = await dataClient(flags);
    const stream = client.subscribe({ topic: args.topic, group: flags.group });
    let received = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        let idle = setTimeout(() => stream.cancel(), idleMs);
        let settling = Promise.resolve();
        stream.on('data', (res: SubscribeResponse) => {
          clearTimeout(idle);
          received++;
          const envelope = res.message!;
          if (flags.json) {
            this.log(JSON.stringify(toJson(EnvelopeSchema, envelope)));
          } else {
            process.stdout.write(Buffer.from(envelope.payload));
            process.stdout.write('\n');
          }
          settling = settling.then(() =>
            client
              .acknowledge({ subscriptionId: res.subscriptionId, deliveryId: res.deliveryId, success: true })
              .then(() => undefined),
          );
          if (flags.max && received >= flags.max) void settling.then(() => stream.cancel());
          else idle = setTimeout(() => stream.cancel(), idleMs);
        });
        stream.on('error', (err: ServiceError) => {
          clearTimeout(idle);
          // Cancelling is how this command ends on --max or --timeout.
          if (err.code === status.CANCELLED) void settling.then(() => resolve(), reject);
          else reject(client.streamError(err));
        });
        stream.on('end', () => {
          clearTimeout(idle);
          void settling.then(() => resolve(), reject);
        });
      });
      this.logToStderr(`${received} message${received === 1 ? '' : 's'} consumed`);
    } finally {
      client.close();
    }
  }
}
