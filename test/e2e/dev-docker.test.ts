/**
 * `prismctl dev up` on the real Docker engine of scripts/services/docker.sh, with the images it
 * builds locally (no registry is reachable): host networking and free, non-default ports.
 *
 * The full stack runs a real Vault (OpenBao in prism-local/vault:2) that `dev up` bootstraps. Dex
 * cannot be pulled and takes ~16 min to build, so that stack runs without it: dev.yaml's
 * `issuer:` names the development OpenID provider this test starts, which Vault's JWT auth and
 * the proxy then trust as they would trust Dex.
 */
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DevIdp } from '../../src/auth/dev-idp.js';
import { ensureBuilt, REPO_ROOT, runCli } from '../support/cli.js';
import { loginAlice } from '../support/dev-login.js';
import { findLocalImage, probeDocker, type DockerProbe } from '../support/docker-service.js';
import { freePort } from '../support/ports.js';
import { describeIfPresent } from '../support/services.js';

const engine = await probeDocker();
const VAULT_IMAGE = process.env.PRISM_TEST_IMAGE_VAULT || 'prism-local/vault:2';
/** The engine, and on it the Vault image that `scripts/test-services.sh up` builds. */
const withVault: DockerProbe =
  !engine.ok || (await findLocalImage(engine.docker, VAULT_IMAGE))
    ? engine
    : {
        ok: false,
        reason: `the engine has no ${VAULT_IMAGE}; \`scripts/test-services.sh up\` builds it from the OpenBao binary it caches`,
      };
const LOCAL_IMAGES = join(REPO_ROOT, 'test/fixtures/dev/local-images.yaml');
const STACK_LABEL = 'io.prism.stack';

/** Flags moving every port of the stack (admin, proxy and the containers) to free ones. */
async function portFlags(): Promise<{
  flags: string[];
  proxy: number;
  redis: number;
  postgres: number;
  vault: number;
}> {
  const [admin, adminMetrics, proxy, proxyMetrics, redis, nats, natsMonitor, postgres, vault] =
    await Promise.all(Array.from({ length: 9 }, () => freePort()));
  return {
    proxy: proxy!,
    redis: redis!,
    postgres: postgres!,
    vault: vault!,
    flags: [
      ...['--admin-port', String(admin), '--admin-metrics-port', String(adminMetrics)],
      ...['--proxy-port', String(proxy), '--proxy-metrics-port', String(proxyMetrics)],
      ...[
        '--port',
        `redis=${redis}`,
        '--port',
        `nats.client=${nats}`,
        '--port',
        `nats.monitor=${natsMonitor}`,
      ],
      ...['--port', `postgres=${postgres}`, '--port', `vault=${vault}`],
    ],
  };
}

/** A dev.yaml whose only component is a Redis container running `command` (which never answers). */
function neverReadyConfig(file: string, command: string): string {
  writeFileSync(
    file,
    ['network: host', 'only: [redis]', 'components:', '  redis:', '    image: prism-local/redis:7']
      .concat(`    command: [sh, -c, '${command}']`)
      .join('\n'),
  );
  return file;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describeIfPresent('the Vault image', withVault, 'dev up on Docker with local images and a real Vault', () => {
  const docker = engine.ok ? engine.docker : undefined!;
  const home = mkdtempSync(join(tmpdir(), 'prism-dev-docker-'));
  const stack = `e2e${process.pid}`;
  const components = ['redis', 'nats', 'postgres', 'vault'];
  // The identity provider Vault and the proxy trust in place of Dex; its tokens carry the
  // audience of the example namespaces (prismctl, Dex's client id).
  const idp = new DevIdp({ audience: 'prismctl' });
  let ports: Awaited<ReturnType<typeof portFlags>>;
  let env: Record<string, string>;
  const dev = (args: string[]) => runCli(['dev', ...args], { env, timeoutMs: 240_000 });
  const labelled = async () => ({
    containers: await docker.listContainers({ all: true, filters: { label: [`${STACK_LABEL}=${stack}`] } }),
    networks: await docker.listNetworks({ filters: { label: [`${STACK_LABEL}=${stack}`] } }),
    volumes: (await docker.listVolumes({ filters: { label: [`${STACK_LABEL}=${stack}`] } })).Volumes ?? [],
  });
  /** Root-token calls to the stack's Vault (the catalog's dev root token). */
  const vaultApi = async (method: string, path: string): Promise<Record<string, unknown>> => {
    const res = await fetch(`http://127.0.0.1:${ports.vault}/v1/${path}`, {
      method,
      headers: { 'x-vault-token': 'prism-dev-root' },
    });
    expect(res.status, `${method} ${path}`).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  };
  /** A query on the stack's PostgreSQL as its development superuser. */
  const stackQuery = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: ports.postgres,
      user: 'prism',
      password: 'prism',
      database: 'prism',
    });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    await ensureBuilt();
    ports = await portFlags();
    const issuer = await idp.start();
    // dev.yaml in the prism home: what a person on an air-gapped machine would write, with an
    // OpenID issuer of their own instead of Dex.
    copyFileSync(LOCAL_IMAGES, join(home, 'dev.yaml'));
    appendFileSync(join(home, 'dev.yaml'), `issuer: ${issuer}\n`);
    env = { PRISM_HOME: home, PRISM_PROXY_ENDPOINT: `127.0.0.1:${ports.proxy}` };
  });

  afterAll(async () => {
    await dev(['down', '--volumes', '--stack', stack]);
    await idp.stop();
  });

  let supervisor = 0;
  let containerIds: string[] = [];

  it('starts redis, nats, postgres and Vault as labelled containers, bootstraps Vault, then the admin and proxy', async () => {
    const up = await dev([
      'up',
      '--docker',
      '--stack',
      stack,
      '--components',
      components.join(','),
      ...ports.flags,
    ]);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(new RegExp(`^Docker stack '${stack}' ready in \\d+\\.\\d s on unix://`, 'm'));
    for (const c of components) expect(up.stdout).toMatch(new RegExp(`^  ${c}\\s+started`, 'm'));
    expect(up.stdout).toContain('bootstrap postgres: created database prism');
    expect(up.stdout).toMatch(
      /^ {2}bootstrap vault: \d+ steps \(jwt auth, login roles prism-profiles, database roles prism-profiles-kv-store\)$/m,
    );
    expect(up.stdout).toContain(
      'namespaces: billing-jobs, catalog-cache, notifications, playground, profiles, web-sessions',
    );
    expect(up.stdout).toContain('Skipping namespace orders: it needs kafka');
    expect(up.stdout).toContain(`prismctl login --issuer ${idp.issuer}`);
    // Plain progress lines on a pipe (listr2 only draws on a TTY).
    expect(up.stderr).toContain('[redis] healthy (PONG)');
    expect(up.stderr).toContain(
      `profiles, web-sessions: written for the catalog's Dex and Vault, applied with this stack's (${idp.issuer}, http://127.0.0.1:${ports.vault})`,
    );

    const { containers } = await labelled();
    expect(containers.map((c) => c.Names[0]).sort()).toEqual(
      ['nats', 'postgres', 'redis', 'vault'].map((c) => `/prism-${stack}-${c}`),
    );
    expect(containers.every((c) => c.State === 'running' && c.HostConfig.NetworkMode === 'host')).toBe(true);
    containerIds = containers.map((c) => c.Id).sort();
    const state = JSON.parse(readFileSync(join(home, 'dev/state.json'), 'utf8')) as {
      pid: number;
      stack: string;
    };
    expect(state.stack).toBe('docker');
    supervisor = state.pid;
    expect(alive(supervisor)).toBe(true);
  });

  it('the real Vault trusts the stack issuer and holds the database role the profiles namespace derives', async () => {
    const health = await fetch(`http://127.0.0.1:${ports.vault}/v1/sys/health`);
    expect(await health.json()).toMatchObject({ initialized: true, sealed: false });
    expect(((await vaultApi('GET', 'auth/jwt/config')).data as Record<string, unknown>).bound_issuer).toBe(
      idp.issuer,
    );
    const role = (await vaultApi('GET', 'auth/jwt/role/prism-profiles')).data as Record<string, unknown>;
    expect(role.bound_audiences).toEqual(['prismctl']);
    const database = (await vaultApi('GET', 'database/roles/prism-profiles-kv-store')).data as Record<
      string,
      unknown
    >;
    expect(database.db_name).toBe('prism-postgres');
  });

  it('serves the Vault-backed profiles namespace to alice as a PostgreSQL role Vault leased for her session', async () => {
    const token = await loginAlice(idp);
    const asAlice = { env: { ...env, PRISM_TOKEN: token } };
    const set = await runCli(['kv', 'set', '-n', 'profiles', 'alice', '{"tier":"gold"}'], asAlice);
    expect(set.code, set.stderr).toBe(0);
    const get = await runCli(['kv', 'get', '-n', 'profiles', 'alice'], asAlice);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toBe('{"tier":"gold"}');

    // One lease of the role the slot derives, and the store's connections made as its user.
    const leases = (await vaultApi('LIST', 'sys/leases/lookup/database/creds/prism-profiles-kv-store'))
      .data as { keys: string[] };
    expect(leases.keys).toHaveLength(1);
    const users = await stackQuery<{ usename: string }>(
      'SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = $1',
      ['prism-kv/profiles'],
    );
    expect(users).toHaveLength(1);
    const leased = users[0]!.usename;
    expect(leased).not.toBe('prism');
    const member = await stackQuery(
      `SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
        WHERE r.rolname = $1 AND g.rolname = 'prism_owner'`,
      [leased],
    );
    expect(member).toHaveLength(1);

    // Without a token the proxy refuses the namespace before Vault is asked for anything.
    const anonymous = await runCli(['kv', 'get', '-n', 'profiles', 'alice'], { env });
    expect(anonymous.code).not.toBe(0);
  });

  it('serves kv set / kv get on Redis through the proxy', async () => {
    expect((await runCli(['kv', 'set', '-n', 'catalog-cache', 'greeting', 'hello'], { env })).code).toBe(0);
    const get = await runCli(['kv', 'get', '-n', 'catalog-cache', 'greeting'], { env });
    expect(get.stdout).toBe('hello');
    // The value really is in the container's Redis.
    const { probeRedis } = await import('../../src/localstack/probes.js');
    expect((await probeRedis('127.0.0.1', ports.redis)).healthy).toBe(true);
  });

  it('serves publish / consume on NATS JetStream through the proxy', async () => {
    const published = await runCli(['publish', '-n', 'notifications', 'notifications.events', 'ping'], {
      env,
    });
    expect(published.code, published.stderr).toBe(0);
    const consume = await runCli(
      [
        'consume',
        '-n',
        'notifications',
        'notifications.events',
        '--group',
        'workers',
        '--max',
        '1',
        '--timeout',
        '10s',
      ],
      { env },
    );
    expect(consume.code, consume.stderr).toBe(0);
    expect(consume.stdout).toBe('ping\n');
  });

  it('a second dev up reports everything running and healthy and starts nothing', async () => {
    const again = await dev([
      'up',
      '--docker',
      '--stack',
      stack,
      '--components',
      components.join(','),
      ...ports.flags,
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`Docker stack '${stack}' is already running and healthy`);
    expect(again.stdout).toContain('nothing was started');
    for (const c of components) expect(again.stdout).toMatch(new RegExp(`^  ${c}\\s+already running`, 'm'));
    const { containers } = await labelled();
    expect(containers.map((c) => c.Id).sort()).toEqual(containerIds);
    expect(JSON.parse(readFileSync(join(home, 'dev/state.json'), 'utf8')).pid).toBe(supervisor);
  });

  it('dev status --json shows each container and process healthy, with ports and persistence', async () => {
    const status = await dev(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const json = JSON.parse(status.stdout) as {
      stack: string;
      name: string;
      healthy: boolean;
      components: Array<{
        name: string;
        kind: string;
        state: string;
        health: string;
        persists: boolean;
        ports: Record<string, number>;
      }>;
    };
    expect(json).toMatchObject({ stack: 'docker', name: stack, healthy: true });
    expect(json.components.map((c) => [c.name, c.kind, c.state, c.health, c.persists])).toEqual([
      ['redis', 'container', 'running', 'healthy', true],
      ['nats', 'container', 'running', 'healthy', true],
      ['postgres', 'container', 'running', 'healthy', true],
      ['vault', 'container', 'running', 'healthy', false],
      ['admin', 'process', 'running', 'healthy', true],
      ['proxy', 'process', 'running', 'healthy', true],
    ]);
    expect(json.components[0]!.ports).toEqual({ redis: ports.redis });
    expect(json.components[3]!.ports).toEqual({ api: ports.vault });
  });

  it('dev logs prints a container component from the engine', async () => {
    const logs = await dev(['logs', 'redis', '--tail', '50']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/Ready to accept connections/);
    const vault = await dev(['logs', 'vault', '--tail', '200']);
    expect(vault.stdout).toMatch(/OpenBao v2\./);
  });

  it('dev down leaves no container, network or child process with the stack label; volumes only go with --volumes', async () => {
    const down = await dev(['down']);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toContain(`Stopped Docker stack '${stack}': removed 4 containers`);
    const after = await labelled();
    expect(after.containers).toEqual([]);
    expect(after.networks).toEqual([]);
    expect(after.volumes.map((v) => v.Name).sort()).toEqual(
      ['nats', 'postgres', 'redis'].map((c) => `prism-${stack}-${c}-data`),
    );
    expect(alive(supervisor)).toBe(false);
    expect(existsSync(join(home, 'dev/state.json'))).toBe(false);
    const volumes = await dev(['down', '--volumes', '--stack', stack]);
    expect(volumes.code).toBe(0);
    expect((await labelled()).volumes).toEqual([]);
  });
});

describeIfPresent('docker', engine, 'dev up on Docker: failures start nothing or clean up', () => {
  const docker = engine.ok ? engine.docker : undefined!;
  const home = mkdtempSync(join(tmpdir(), 'prism-dev-docker-fail-'));
  const env = { PRISM_HOME: home };
  const stackContainers = (stack: string) =>
    docker.listContainers({ all: true, filters: { label: [`${STACK_LABEL}=${stack}`] } });

  beforeAll(async () => {
    await ensureBuilt();
    copyFileSync(LOCAL_IMAGES, join(home, 'dev.yaml'));
  });

  it('names a port taken beforehand, its component and how to move it, and starts nothing', async () => {
    const stack = `taken${process.pid}`;
    const ports = await portFlags();
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(ports.redis, '127.0.0.1', resolve));
    try {
      const up = await runCli(['dev', 'up', '--docker', '--stack', stack, ...ports.flags], { env });
      expect(up.code).not.toBe(0);
      expect(up.stderr).toContain(
        `port 127.0.0.1:${ports.redis} for the redis is already taken by another process; free it or move the redis with --port redis=<port> or components.redis.ports.redis in dev.yaml`,
      );
      expect(up.stderr).toContain('nothing was started');
      expect(await stackContainers(stack)).toEqual([]);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('an image that cannot be pulled names the image, the component and how to use a local one', async () => {
    const stack = `pull${process.pid}`;
    const ports = await portFlags();
    // A registry on a closed loopback port: the engine's pull fails at once, and no traffic
    // leaves the machine.
    const image = `127.0.0.1:${await freePort()}/prism/absent:1`;
    const up = await runCli(
      [
        'dev',
        'up',
        '--docker',
        '--stack',
        stack,
        '--components',
        'redis',
        '--image',
        `redis=${image}`,
        ...ports.flags,
      ],
      { env, timeoutMs: 120_000 },
    );
    expect(up.code).not.toBe(0);
    expect(up.stderr).toContain(`cannot pull ${image} for redis:`);
    expect(up.stderr).toContain(
      'without a reachable registry, point redis at a local image: --image redis=<image> or components.redis.image in dev.yaml',
    );
    expect(await stackContainers(stack)).toEqual([]);
    expect((await docker.listNetworks({ filters: { label: [`${STACK_LABEL}=${stack}`] } })).length).toBe(0);
  });

  it('a component whose probe never passes fails within the wait timeout and leaves no container behind', async () => {
    const stack = `probe${process.pid}`;
    const ports = await portFlags();
    // Redis that never answers: the container runs, but nothing listens on its port.
    const config = neverReadyConfig(
      join(home, 'never-ready.yaml'),
      'echo redis is thinking about it; exec sleep 3600',
    );
    const started = Date.now();
    const up = await runCli(
      ['dev', 'up', '--docker', '--stack', stack, '--config', config, '--wait-timeout', '25', ...ports.flags],
      { env, timeoutMs: 120_000 },
    );
    const seconds = (Date.now() - started) / 1000;
    expect(up.code).not.toBe(0);
    expect(up.stderr).toContain('redis did not become healthy: not healthy within the wait timeout');
    expect(up.stderr).toContain('Removed what this run started.');
    expect(up.stderr).toContain(`Last log lines of prism-${stack}-redis:`);
    expect(up.stderr).toContain('redis is thinking about it');
    // The timeout bounds the wait; removing the container takes a little more.
    expect(seconds).toBeLessThan(25 + 30);
    expect(await stackContainers(stack)).toEqual([]);
    expect(existsSync(join(home, 'dev/state.json'))).toBe(false);
  });

  it('with --keep-on-failure, keeps the container of the failed run to inspect, and dev down removes it', async () => {
    const stack = `keep${process.pid}`;
    const ports = await portFlags();
    const config = neverReadyConfig(join(home, 'never-ready-kept.yaml'), 'exec sleep 3600');
    const up = await runCli(
      [
        'dev',
        'up',
        '--docker',
        '--stack',
        stack,
        '--config',
        config,
        '--wait-timeout',
        '5',
        '--keep-on-failure',
        ...ports.flags,
      ],
      { env, timeoutMs: 120_000 },
    );
    expect(up.code).not.toBe(0);
    expect(up.stderr).toContain('redis did not become healthy');
    expect(up.stderr).toContain(
      'Kept what this run started (--keep-on-failure); `prismctl dev down` removes it.',
    );
    const kept = await stackContainers(stack);
    expect(kept.map((c) => c.Names[0])).toEqual([`/prism-${stack}-redis`]);
    const down = await runCli(['dev', 'down', '--volumes', '--stack', stack], { env, timeoutMs: 120_000 });
    expect(down.code, down.stderr).toBe(0);
    expect(await stackContainers(stack)).toEqual([]);
  });
});
