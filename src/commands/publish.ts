import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { dataClient, dataFlags } from '../cli/data-flags.js';
import { parseHeaders, readValue } from '../cli/values.js';

interface Published {
  messageId: string;
  publishedAtMs: number;
  duplicate: boolean;
}

export default class Publish extends BaseCommand {
  static override summary = 'Publish messages through the proxy (exit 1 if any publish failed)';
  static override examples = [
    '<%= config.bin %> publish -n playground playground.events \'{"hello":"world"}\' -H source=cli',
    '<%= config.bin %> publish -n playground playground.events --file event.bin --count 10',
  ];
  static override enableJsonFlag = true;
  static override args = {
    topic: Args.string({ required: true, description: 'Topic' }),
    data: Args.string({ description: 'Payload (default: --file or stdin)', ignoreStdin: true }),
  };
  static override flags = {
    ...dataFlags,
    file: Flags.string({ char: 'f', description: 'Read the payload from this file' }),
    header: Flags.string({ char: 'H', description: 'Custom header key=value (repeatable)', multiple: true }),
    'content-type': Flags.string({
      description: 'Content type of the payload',
      default: 'application/octet-stream',
    }),
    'correlation-id': Flags.string({ description: 'Correlation id carried in the envelope' }),
    count: Flags.integer({ description: 'Publish the payload this many times', default: 1, min: 1 }),
  };

  async run(): Promise<{ published: Published[]; failed: number }> {
    const { args, flags } = await this.parse(Publish);
    const payload = await readValue(args.data, flags.file);
    const headers = parseHeaders(flags.header ?? []);
    const client = await dataClient(flags);
    const published: Published[] = [];
    let failed = 0;
    try {
      for (let i = 0; i < flags.count; i++) {
        try {
          const res = await client.publish({
            topic: args.topic,
            payload,
            headers,
            contentType: flags['content-type'],
            correlationId: flags['correlation-id'] ?? '',
          });
          published.push({
            messageId: res.messageId,
            publishedAtMs: Number(res.publishedAtMs),
            duplicate: res.duplicate,
          });
          if (!this.jsonEnabled())
            this.log(`${res.messageId}${res.duplicate ? ' (duplicate, not published again)' : ''}`);
        } catch (err) {
          failed++;
          if (flags.count === 1) throw err;
          this.logToStderr(`publish ${i + 1} failed: ${(err as Error).message}`);
        }
      }
      if (failed > 0) process.exitCode = 1;
      return { published, failed };
    } finally {
      client.close();
    }
  }
}
