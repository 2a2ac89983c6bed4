import { adminClient, adminFlags } from '../../cli/admin-flags.js';
import { BaseCommand } from '../../cli/base-command.js';
import { formatColumns } from '../../cli/output.js';

interface Row {
  name: string;
  team: string;
  version: number;
  partition: number;
  ownerProxy: string;
  patterns: string[];
  updatedAt: string;
}

export default class NamespaceList extends BaseCommand {
  static override summary = 'List namespaces on the control plane';
  static override enableJsonFlag = true;
  static override flags = { ...adminFlags };

  async run(): Promise<Row[]> {
    const { flags } = await this.parse(NamespaceList);
    const client = await adminClient(flags);
    try {
      const rows = (await client.list()).namespaces.map((n) => ({
        name: n.name,
        team: n.team,
        version: Number(n.version),
        partition: n.partition,
        ownerProxy: n.ownerProxy,
        patterns: n.patternTypes,
        updatedAt: new Date(Number(n.updatedAtMs)).toISOString(),
      }));
      if (!this.jsonEnabled()) this.write(renderTable(rows));
      return rows;
    } finally {
      client.close();
    }
  }
}

function renderTable(rows: Row[]): string {
  if (rows.length === 0) return 'no namespaces\n';
  const table = [['NAME', 'TEAM', 'VERSION', 'PARTITION', 'PROXY', 'PATTERNS', 'UPDATED']].concat(
    rows.map((r) => [
      r.name,
      r.team,
      String(r.version),
      String(r.partition),
      r.ownerProxy || '-',
      r.patterns.join(','),
      r.updatedAt,
    ]),
  );
  return formatColumns(table) + '\n';
}
