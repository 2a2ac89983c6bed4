import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { formatColumns } from '../../cli/output.js';
import { fetchRunners } from '../../proxy/launcher/runners-client.js';
import type { RunnerProcessInfo } from '../../proxy/launcher/runner-process.js';

export default class RunnerList extends BaseCommand {
  static override summary = 'List the runner processes a proxy launched';
  static override description =
    'Patterns with `isolation: namespace` or `pattern` run in runner processes that the proxy launches and supervises. This reads them from the proxy’s status port (its --metrics-listen address, GET /runners): namespace, patterns, pid, state (starting, serving, backoff, stopping, stopped, failed), restarts and resident memory.';
  static override examples = [
    '<%= config.bin %> runner list',
    '<%= config.bin %> runner list --proxy-status 127.0.0.1:50091 --json',
  ];
  static override enableJsonFlag = true;
  static override flags = {
    'proxy-status': Flags.string({
      description: 'The proxy’s status (metrics) address, host:port or an http(s) URL',
      default: '127.0.0.1:50091',
      env: 'PRISM_PROXY_STATUS',
    }),
  };

  async run(): Promise<{ runners: RunnerProcessInfo[] }> {
    const { flags } = await this.parse(RunnerList);
    const runners = await fetchRunners(flags['proxy-status']);
    if (!this.jsonEnabled()) this.log(renderTable(runners));
    return { runners };
  }
}

function renderTable(rows: RunnerProcessInfo[]): string {
  if (rows.length === 0) return 'no launched runner processes';
  const header = ['NAMESPACE', 'PATTERNS', 'ISOLATION', 'PID', 'STATE', 'RESTARTS', 'RSS'];
  const lines = rows.map((r) => [
    r.namespace,
    r.patterns.join(','),
    r.isolation,
    r.pid === null ? '-' : String(r.pid),
    r.state,
    String(r.restarts),
    r.rssBytes === null ? '-' : `${(r.rssBytes / 1024 / 1024).toFixed(1)} MiB`,
  ]);
  return formatColumns([header, ...lines]);
}
