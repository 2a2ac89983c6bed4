import { BaseCommand } from '../../cli/base-command.js';
import { formatColumns } from '../../cli/output.js';
import { dataClient, dataFlags } from '../../cli/data-flags.js';

export interface CallerSessionRow {
  id: string;
  subject: string;
  owner: string;
  roles: string[];
  createdAt: string;
  lastUsedAt: string;
  expiresAt: string;
  idleTimeoutSeconds: number;
}

export default class SessionList extends BaseCommand {
  static override summary =
    'List a namespace’s caller sessions (Vault logins and leased backend users) across all workers and proxies';
  static override description =
    'Reads the sessions kept in the namespace’s session-manager store, so sessions opened through any worker or proxy of the namespace appear in one table. Needs admin on the namespace. No token or password is shown.';
  static override examples = [
    '<%= config.bin %> session list -n orders',
    '<%= config.bin %> session list -n orders --json',
  ];
  static override enableJsonFlag = true;
  static override flags = { ...dataFlags };

  async run(): Promise<{ namespace: string; sessions: CallerSessionRow[] }> {
    const { flags } = await this.parse(SessionList);
    const client = await dataClient(flags);
    try {
      const res = await client.listCallerSessions();
      const iso = (ms: bigint) => (ms > 0n ? new Date(Number(ms)).toISOString() : '');
      const rows = res.sessions.map((s) => ({
        id: s.id,
        subject: s.subject,
        owner: s.owner,
        roles: [...s.roles],
        createdAt: iso(s.createdAtMs),
        lastUsedAt: iso(s.lastUsedMs),
        expiresAt: iso(s.expiresAtMs),
        idleTimeoutSeconds: Number(s.idleTimeoutMs) / 1000,
      }));
      if (!this.jsonEnabled()) this.log(renderTable(rows));
      return { namespace: flags.namespace, sessions: rows };
    } finally {
      client.close();
    }
  }
}

function renderTable(rows: CallerSessionRow[]): string {
  if (rows.length === 0) return 'no caller sessions';
  const header = ['ID', 'SUBJECT', 'OWNER', 'LEASES', 'LAST USED', 'EXPIRES'];
  const lines = rows.map((r) => [
    r.id,
    r.subject,
    r.owner.slice(0, 8),
    r.roles.join(',') || '-',
    r.lastUsedAt,
    r.expiresAt,
  ]);
  return formatColumns([header, ...lines]);
}
