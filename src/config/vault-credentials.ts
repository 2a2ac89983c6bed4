/**
 * Which Vault references can work (DESIGN.md §4 rules 5 and 6, §7). Prism leases backend users
 * from Vault's database secrets engine only (`database/creds/<role>`), and that engine has a plugin
 * for PostgreSQL and Redis among our backends. No Vault or OpenBao secrets engine issues Kafka or
 * NATS credentials, and memstore and sqlite take none, so a `vault://` reference on those slots
 * could never be served: validation refuses it and the control plane derives none.
 */

/** Backend → the database secrets engine plugin that creates and drops its users. */
export const VAULT_DATABASE_PLUGINS: Readonly<Record<string, string>> = {
  postgres: 'postgresql-database-plugin',
  redis: 'redis-database-plugin',
};

/** Backends that run inside the process and take no credentials at all. */
const WITHOUT_CREDENTIALS: ReadonlySet<string> = new Set(['memstore', 'sqlite']);

export function backendTakesNoCredentials(backend: string): boolean {
  return WITHOUT_CREDENTIALS.has(backend);
}

/** The only Vault reference Prism resolves; group 1 is the database role. */
export const VAULT_DATABASE_REFERENCE = /^vault:\/\/database\/creds\/([A-Za-z0-9_.-]+)$/;

/** True when Vault's database secrets engine can issue credentials for `backend`. */
export function vaultIssuesCredentials(backend: string): boolean {
  return Object.hasOwn(VAULT_DATABASE_PLUGINS, backend);
}

/** The backends Vault can issue credentials for, for messages: "postgres and redis". */
export function vaultBackendsText(): string {
  const names = Object.keys(VAULT_DATABASE_PLUGINS).sort();
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : (names[0] ?? '');
}

/** `vault://database/creds/<role>` → the role; undefined for any other text. */
export function vaultDatabaseRole(ref: string): string | undefined {
  return VAULT_DATABASE_REFERENCE.exec(ref)?.[1];
}
