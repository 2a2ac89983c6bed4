import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { dataClient, dataFlags } from '../cli/data-flags.js';
import { parseHeaders, readValue } from '../cli/values.js';
import type { PrismError } from '../errors.js';
import { UsageError } from '../errors.js';

interface Published {
  messageId: string;
  publishedAtMs: number;
  duplicate: boolean;
}

export default class Publish extends BaseCommand {
  static override summary = 'Publish messages through the proxy (exit 1 if any publish failed)';
  static override description =
    "Messages travel on one PublishStream: the proxy acknowledges each as the backend confirms it, and the producer batches them to the backend by its batch_size and batch_interval settings. A --file larger than 1 MiB is sent in pieces instead (PublishUpload, one call per message), so no gRPC message limit applies to it: the proxy's --max-payload-size and the producer's max_message_size do (docs/messaging.md, Claim check).";
  static override examples = [
    '<%= config.bin %> publish -n playground playground.events \'{"hello":"world"}\' -H source=cli',
    '<%= config.bin %> publish -n playground playground.events --file event.bin --count 10',
    'tail -f app.log | <%= config.bin %> publish -n playground playground.logs --file - --lines',
  ];
  static override enableJsonFlag = true;
  static override args = {
    topic: Args.string({ required: true, description: 'Topic' }),
    data: Args.string({ description: 'Payload (default: --file or stdin)', ignoreStdin: true }),
  };
  static override flags = {
    ...dataFlags,
    file: Flags.string({ char: 'f', description: 'Read the payload from this file ("-" for stdin)' }),
    lines: Flags.boolean({
      description: 'Publish each line of --file (or stdin) as its own message, as it is read',
      default: false,
    }),
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
    if (flags.lines && args.data !== undefined)
      throw new UsageError('--lines reads messages from --file or stdin, not from an argument');
    if (flags.lines && flags.count !== 1) throw new UsageError('give --lines or --count, not both');
    const headers = parseHeaders(flags.header ?? []);
    const file = flags.file !== undefined && flags.file !== '-' && !flags.lines ? flags.file : undefined;
    // A file that cannot be read is reported by readValue below, as for small files.
    const size =
      file !== undefined && args.data === undefined
        ? await stat(file).then(
            (s) => s.size,
            () => 0,
          )
        : 0;
    const client = await dataClient(flags);
    if (file !== undefined && size > UPLOAD_ABOVE_BYTES) {
      try {
        const sha256 = await sha256Of(file);
        const published: Published[] = [];
        for (let i = 0; i < flags.count; i++) {
          const res = await client.publishUpload(
            {
              topic: args.topic,
              headers,
              contentType: flags['content-type'],
              correlationId: flags['correlation-id'] ?? '',
              size,
              sha256,
            },
            createReadStream(file, { highWaterMark: 1024 * 1024 }),
          );
          published.push({
            messageId: res.messageId,
            publishedAtMs: Number(res.publishedAtMs),
            duplicate: res.duplicate,
          });
          if (!this.jsonEnabled())
            this.log(`${res.messageId}${res.duplicate ? ' (duplicate, not published again)' : ''}`);
        }
        return { published, failed: 0 };
      } finally {
        client.close();
      }
    }
    const payloads = flags.lines
      ? linesOf(flags.file)
      : repeat(await readValue(args.data, flags.file === '-' ? undefined : flags.file), flags.count);
    const writer = client.publishStream();
    const results: Array<Published | undefined> = [];
    let failed = 0;
    let sent = 0;
    const acks: Array<Promise<void>> = [];
    try {
      for await (const payload of payloads) {
        const index = ++sent;
        await writer.ready();
        const ack = writer
          .publish({
            topic: args.topic,
            payload,
            headers,
            contentType: flags['content-type'],
            correlationId: flags['correlation-id'] ?? '',
          })
          .then(
            (res) => {
              results[index - 1] = {
                messageId: res.messageId,
                publishedAtMs: Number(res.publishedAtMs),
                duplicate: res.duplicate,
              };
              if (!this.jsonEnabled())
                this.log(`${res.messageId}${res.duplicate ? ' (duplicate, not published again)' : ''}`);
            },
            (err: unknown) => {
              failed++;
              if (sent === 1 && !flags.lines && flags.count === 1) throw err;
              this.logToStderr(`publish ${index} failed: ${(err as PrismError).message}`);
            },
          );
        ack.catch(() => undefined);
        acks.push(ack);
      }
      await writer.end();
      for (const ack of acks) await ack;
      if (failed > 0) process.exitCode = 1;
      return { published: results.filter((r): r is Published => r !== undefined), failed };
    } finally {
      writer.cancel();
      client.close();
    }
  }
}

/** A --file above this many bytes is sent with PublishUpload, in pieces. */
const UPLOAD_ABOVE_BYTES = 1024 * 1024;

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function* repeat(payload: Uint8Array, count: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < count; i++) yield payload;
}

async function* linesOf(file: string | undefined): AsyncGenerator<Uint8Array> {
  const input = file === undefined || file === '-' ? process.stdin : createReadStream(file);
  for await (const line of createInterface({ input, crlfDelay: Infinity })) yield Buffer.from(line, 'utf8');
}
