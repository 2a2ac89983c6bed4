import { Args, Flags } from '@oclif/core';
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { BaseCommand } from '../../cli/base-command.js';
import { PrismError } from '../../errors.js';
import { embeddedLogFile } from '../../localstack/state.js';

export default class DevLogs extends BaseCommand {
  static override summary =
    'Print the local stack logs (JSON lines), optionally of one component, and follow them';
  static override examples = ['<%= config.bin %> dev logs', '<%= config.bin %> dev logs proxy -f'];
  static override args = {
    component: Args.string({ description: 'Only this component', options: ['admin', 'proxy'] }),
  };
  static override flags = {
    follow: Flags.boolean({ char: 'f', description: 'Keep printing new lines until Ctrl-C' }),
    tail: Flags.integer({ description: 'Start with only the last N lines' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(DevLogs);
    const file = embeddedLogFile();
    if (!existsSync(file)) {
      throw new PrismError('E_NOT_FOUND', `no logs yet at ${file}`, {
        hint: 'start the stack with `prismctl dev up`',
      });
    }
    const keep = (line: string) => !args.component || line.includes(`"component":"${args.component}"`);
    let offset = 0;
    let partial = '';
    const drain = (first: boolean) => {
      const size = statSync(file).size;
      if (size < offset) offset = 0;
      if (size === offset) return;
      const buf = Buffer.alloc(size - offset);
      const fd = openSync(file, 'r');
      readSync(fd, buf, 0, buf.length, offset);
      closeSync(fd);
      offset = size;
      const lines = (partial + buf.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      let out = lines.filter((l) => l !== '' && keep(l));
      if (first && flags.tail !== undefined) out = out.slice(-flags.tail);
      if (out.length) process.stdout.write(`${out.join('\n')}\n`);
    };
    drain(true);
    if (!flags.follow) return;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => drain(false), 250);
      const stop = () => {
        clearInterval(timer);
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  }
}
