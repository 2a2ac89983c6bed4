/**
 * What `dev up` writes into its containers once they are healthy: the `prism` database and the
 * role Prism's tables belong to in PostgreSQL, and Vault's JWT auth, database secrets engine and
 * policies for the Vault-enabled namespaces.
 */
import { PrismError } from '../errors.js';
import type { NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import {
  bootstrapVault,
  dexIssuer,
  ensurePostgresDatabase,
  ensureSessionOwner,
  vaultNamespaces,
  type StackPostgres,
} from './bootstrap.js';
import type { ComponentSpec, StackConfig } from './catalog.js';
import { renderContext } from './containers.js';
import type { StackEvents } from './docker-stack.js';
import { DEV_HOST } from './ports.js';

/** Bootstraps the stack's PostgreSQL and Vault, when it runs them; one line per thing done. */
export async function bootstrapStack(
  config: StackConfig,
  loaded: ReadonlyArray<{ request: NamespaceRequest }>,
  events: StackEvents,
): Promise<string[]> {
  const done: string[] = [];
  const byName = new Map(config.components.map((c) => [c.name, c]));
  const pg = byName.get('postgres');
  if (pg) {
    const created = await ensurePostgresDatabase(stackPostgres(pg));
    // The role every table of Prism's drivers belongs to (see startSupervisor), Vault or not.
    await ensureSessionOwner(stackPostgres(pg));
    done.push(created ? 'postgres: created database prism' : 'postgres: database prism exists');
  }
  const vault = byName.get('vault');
  const jwt = vault ? await vaultJwtBinding(config, vault) : undefined;
  if (vault && !jwt) {
    done.push(
      'vault: not bootstrapped (its JWT auth needs an issuer: run Dex, or name yours with issuer: in dev.yaml)',
    );
  }
  if (vault && jwt) {
    events.status('vault', `bootstrapping: JWT auth bound to ${jwt.label}, database secrets engine, policy`);
    const fromVault = renderContext(config, vault).host;
    // Exactly the roles the admin will derive for these namespaces, on the backends it is given.
    const namespaces = vaultNamespaces(
      loaded.map((l) => l.request),
      [...config.components.map((c) => c.name), 'memstore', 'sqlite'],
    );
    const redis = byName.get('redis');
    const steps = await bootstrapVault({
      address: `http://${DEV_HOST}:${vault.ports.api}`,
      rootToken: vault.env.VAULT_DEV_ROOT_TOKEN_ID ?? 'root',
      issuer: jwt.issuer,
      jwksUrl: jwt.jwksUrl,
      audience: 'prismctl',
      ...(pg
        ? {
            postgres: {
              host: fromVault.postgres!,
              port: renderContext(config, pg).port.postgres!,
              database: 'prism',
              user: pg.env.POSTGRES_USER ?? 'postgres',
              password: pg.env.POSTGRES_PASSWORD ?? '',
            },
          }
        : {}),
      ...(redis ? { redis: { host: fromVault.redis!, port: renderContext(config, redis).port.redis! } } : {}),
      namespaces,
    });
    const roles = namespaces.flatMap((n) => n.databaseRoles.map((r) => r.name));
    done.push(
      `vault: ${steps.length} steps (jwt auth, login roles ${namespaces.map((n) => n.loginRole).join(', ') || 'none'}, ` +
        `database roles ${roles.join(', ') || 'none'})`,
    );
  }
  return done;
}

/**
 * What Vault's JWT auth trusts: Dex (its keys as the Vault container reaches them), or dev.yaml's
 * `issuer:`, whose keys its discovery document names. Undefined when the stack has neither.
 */
async function vaultJwtBinding(
  config: StackConfig,
  vault: ComponentSpec,
): Promise<{ issuer: string; jwksUrl: string; label: string } | undefined> {
  if (config.issuer !== undefined) {
    return { issuer: config.issuer, jwksUrl: await discoverJwksUrl(config.issuer), label: config.issuer };
  }
  const dex = config.components.find((c) => c.name === 'dex');
  if (!dex) return undefined;
  const fromVault = renderContext(config, vault).host;
  return {
    issuer: dexIssuer(dex),
    jwksUrl: `http://${fromVault.dex}:${renderContext(config, dex).port.http}/dex/keys`,
    label: 'Dex',
  };
}

async function discoverJwksUrl(issuer: string): Promise<string> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let jwksUri: unknown;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`it answered ${res.status}`);
    jwksUri = ((await res.json()) as { jwks_uri?: unknown }).jwks_uri;
  } catch (err) {
    throw new PrismError(
      'E_UNAVAILABLE',
      `cannot read ${url}, the discovery document of issuer: ${issuer}: ${(err as Error).message}`,
      { hint: 'start the identity provider before `prismctl dev up`, or correct issuer: in dev.yaml' },
    );
  }
  if (typeof jwksUri !== 'string' || jwksUri === '') {
    throw new PrismError('E_UNAVAILABLE', `${url} names no jwks_uri`);
  }
  return jwksUri;
}

/** The stack's PostgreSQL as its development superuser, on the `prism` database. */
function stackPostgres(pg: ComponentSpec): StackPostgres {
  return {
    port: pg.ports.postgres!,
    user: pg.env.POSTGRES_USER ?? 'postgres',
    ...(pg.env.POSTGRES_PASSWORD !== undefined ? { password: pg.env.POSTGRES_PASSWORD } : {}),
    database: 'prism',
  };
}
