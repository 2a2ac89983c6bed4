import { Args, Flags } from '@oclif/core';
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { BaseCommand } from '../../cli/base-command.js';
import { PrismError } from '../../errors.js';
import { didYouMean } from '../../config/suggest.js';
import { embeddedLogFile, readState } from '../../localstack/state.js';

export default class DevLogs extends BaseCommand {
  static override summary =
    'Print the local stack logs (JSON lines), optionally of one component, and follow them';
  static override description =
    'Embedded stack: its log file, filtered by component. Docker stack: admin, proxy and supervisor from their files under <prism home>/dev/logs, and any container component (redis, postgres, ...) from the engine.';
  static override examples = [
    '<%= config.bin %> dev logs',
    '<%= config.bin %> dev logs proxy -f',
    '<%= config.bin %> dev logs postgres --tail 50',
  ];
  static override args = {
    component: Args.string({
      description: 'Only this component: admin, proxy, or (Docker stack) supervisor or a container component',
    }),
  };
  static override flags = {
    follow: Flags.boolean({ char: 'f', description: 'Keep printing new lines until Ctrl-C' }),
    tail: Flags.integer({ description: 'Start with only the last N lines' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(DevLogs);
    const state = readState();
    let file = embeddedLogFile();
    let component = args.component;
    if (state?.stack === 'docker' && state.docker) {
      const docker = state.docker;
      const files: Record<string, string> = { ...docker.logFiles, supervisor: state.logFile };
      const containers = docker.components.map((c) => c.name);
      const name = args.component ?? 'proxy';
      if (containers.includes(name)) {
        const { streamLogs } = await import('../../localstack/docker-stack.js');
        const { connectEngine } = await import('../../localstack/docker-engine.js');
        await streamLogs(connectEngine(docker.engine), docker.name, name, {
          follow: flags.follow,
          ...(flags.tail !== undefined ? { tail: flags.tail } : {}),
          stdout: process.stdout,
          stderr: process.stderr,
        });
        return;
      }
      const chosen = files[name];
      if (!chosen) {
        const all = [...Object.keys(files), ...containers];
        throw new PrismError(
          'E_USAGE',
          `the Docker stack has no component '${name}'; ${didYouMean(name, all)}`,
        );
      }
      file = chosen;
      component = undefined;
    } else if (component !== undefined && component !== 'admin' && component !== 'proxy') {
      throw new PrismError(
        'E_USAGE',
        `the embedded stack has components admin and proxy, not '${component}'`,
      );
    }
    if (!existsSync(file)) {
      throw new PrismError('E_NOT_FOUND', `no logs yet at ${file}`, {
        hint: 'start the stack with `prismctl dev up`',
      });
    }
    const keep = (line: string) => !component || line.includes(`"component":"${component}"`);
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
