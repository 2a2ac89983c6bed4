/**
 * A Vault STAND-IN for tests (DESIGN.md §9): Vault itself is not installable here, so this small
 * HTTP server on 127.0.0.1 implements only the documented endpoints that src/auth/vault-client.ts
 * calls, with Vault's request and response shapes:
 *
 *   POST /v1/auth/<mount>/login         {role, jwt} → auth.client_token, auth.lease_duration
 *                                       {role, iam_http_request_method, iam_request_url,
 *                                        iam_request_body, iam_request_headers} (aws, iam type)
 *   GET  /v1/database/creds/<role>      → data.username/password, lease_id, lease_duration
 *   PUT  /v1/sys/leases/renew           {lease_id, increment}
 *   PUT  /v1/sys/leases/revoke          {lease_id}
 *   POST /v1/auth/token/renew-self, /v1/auth/token/revoke-self
 *   GET  /v1/sys/health                 → 200 initialized and unsealed, 503 when `sealed` (no token)
 *
 * and the writes `prismctl dev up` bootstraps Vault with (src/localstack/bootstrap.ts), each
 * requiring the root token (option rootToken; without it they answer 403) and recorded in
 * `writes` and in the state fields below:
 *
 *   GET  /v1/sys/auth, POST /v1/sys/auth/<path> {type}          auth methods ("path is already in use")
 *   GET  /v1/sys/mounts, POST /v1/sys/mounts/<path> {type}      secrets engines
 *   PUT  /v1/sys/policies/acl/<name> {policy}
 *   POST /v1/auth/<jwt mount>/config   exactly one of jwks_url, oidc_discovery_url,
 *                                      jwt_validation_pubkeys; a jwks_url is fetched, as Vault does
 *   POST /v1/auth/<jwt mount>/role/<name>   a jwt role needs user_claim and a bound constraint
 *   POST /v1/database/config/<name>    postgresql-database-plugin; verifies the connection against
 *                                      the real PostgreSQL unless verify_connection is false
 *   POST /v1/database/roles/<name>     needs db_name and creation_statements
 *
 * The backend side is real: like Vault's database secrets engine, each role runs creation
 * statements against the real PostgreSQL (CREATE ROLE ... VALID UNTIL) or Redis (ACL SETUSER),
 * and revocation statements when the lease is revoked, expires, or its token is revoked. Logins
 * verify the JWT with jose against the issuer's JWKS; aws logins verify the SigV4 signature of
 * the GetCallerIdentity request with the test's secret key (recomputed here, independently of
 * src/auth/aws-iam.ts) instead of sending it to STS. Every call is logged for assertions.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import pg from 'pg';
import type { DevIdp } from '../../src/auth/dev-idp.js';
import { deviceLogin } from '../../src/auth/login.js';
import { DEFAULT_SCOPES } from '../../src/auth/oidc-config.js';
import { TokenCache } from '../../src/auth/token-cache.js';
import { approveDeviceCode } from '../integration/auth/play-person.js';
import { connectPostgres, postgresUrl, redisUrl } from './services.js';

export interface StandinPostgresRole {
  backend: 'postgres';
  /** Admin connection (a role with CREATEROLE). */
  url: string;
  /** Statements with {{name}}, {{password}} and {{expiration}}, as in Vault's creation_statements. */
  creation: string[];
  /** Default: DROP ROLE IF EXISTS "{{name}}". */
  revocation?: string[];
}

export interface StandinRedisRole {
  backend: 'redis';
  url: string;
  /** ACL SETUSER arguments after the user name, with {{password}}; e.g. ['on', '>{{password}}', '~ns:*', '+@all']. */
  rules: string[];
}

export interface StandinAws {
  /** Access key id → secret access key of the IAM identities that may log in. */
  keys: Record<string, string>;
  /** Required X-Vault-AWS-IAM-Server-ID value (iam_server_id_header_value), if any. */
  serverId?: string;
}

export interface VaultStandinOptions {
  /** Issuer whose JWTs may log in (JWKS from its discovery document). */
  issuer: string;
  /** Accept aws (iam) logins signed with these keys. */
  aws?: StandinAws;
  audience?: string;
  /** database/creds roles: the first suffix that ends the requested role decides. */
  roles: Record<string, StandinPostgresRole | StandinRedisRole>;
  /** Lease duration of issued credentials, seconds. Default 60. */
  leaseSeconds?: number;
  /** Lease duration of tokens, seconds. Default 60. */
  tokenSeconds?: number;
  port?: number;
  /** Serve https with this key and certificate (see test/support/test-ca.ts). */
  tls?: { key: Buffer; cert: Buffer };
  /** The token the bootstrap endpoints (sys/auth, sys/mounts, policies, jwt and database config) require. */
  rootToken?: string;
}

/** An accepted write to a bootstrap endpoint; `path` without the /v1/ prefix. */
export interface StandinWrite {
  method: string;
  path: string;
  body: Record<string, unknown>;
}

interface Mount {
  type: string;
  description: string;
  accessor: string;
  options: Record<string, string> | null;
}

export interface StandinCall {
  op: 'login' | 'creds' | 'renew' | 'revoke' | 'renew-self' | 'revoke-self' | 'expire' | 'refused';
  role?: string;
  /** Auth mount of a login. */
  mount?: string;
  username?: string;
  leaseId?: string;
  status: number;
}

interface Lease {
  id: string;
  token: string;
  username: string;
  spec: StandinPostgresRole | StandinRedisRole;
  expiresAt: number;
  timer: NodeJS.Timeout;
}

interface Token {
  expiresAt: number;
  timer: NodeJS.Timeout;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class VaultStandin {
  readonly calls: StandinCall[] = [];
  /** Usernames issued so far (tests check they are gone). */
  readonly issued: { username: string; password: string; backend: string }[] = [];
  /** Tokens issued so far (tests scan logs for them). */
  readonly tokens: string[] = [];
  /** SigV4 signatures of aws logins (tests scan logs for them). */
  readonly signatures: string[] = [];
  /** Accepted writes to the bootstrap endpoints, in order. */
  readonly writes: StandinWrite[] = [];
  /** Enabled auth methods by path ("token/", "jwt/"), as GET sys/auth lists them. */
  readonly authMounts = new Map<string, Mount>([['token/', mount('token', 'token based credentials')]]);
  /** Enabled secrets engines by path, as GET sys/mounts lists them (a dev-mode server's set). */
  readonly secretMounts = new Map<string, Mount>([
    ['cubbyhole/', mount('cubbyhole', 'per-token private secret storage')],
    ['identity/', mount('identity', 'identity store')],
    ['secret/', { ...mount('kv', 'key/value secret storage'), options: { version: '2' } }],
    ['sys/', mount('system', 'system endpoints used for control, policy and debugging')],
  ]);
  readonly policies = new Map<string, string>();
  /** auth/<mount>/config bodies by auth mount. */
  readonly jwtConfigs = new Map<string, Record<string, unknown>>();
  /** auth/<mount>/role/<name> bodies by "<mount>/<name>". */
  readonly jwtRoles = new Map<string, Record<string, unknown>>();
  /** database/config/<name> bodies (password included: tests assert on it). */
  readonly databaseConnections = new Map<string, Record<string, unknown>>();
  readonly databaseRoles = new Map<string, Record<string, unknown>>();
  /** While true, sys/health answers 503 as a sealed Vault does. */
  sealed = false;
  address = '';
  private server?: Server;
  private readonly leases = new Map<string, Lease>();
  private readonly liveTokens = new Map<string, Token>();
  private jwks?: ReturnType<typeof createRemoteJWKSet>;

  constructor(private readonly options: VaultStandinOptions) {}

  async start(): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const tls = this.options.tls;
    const server: Server = tls
      ? createTlsServer({ key: tls.key, cert: tls.cert }, handler)
      : createServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, '127.0.0.1', resolve);
    });
    this.server = server;
    this.address = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.address;
  }

  /** Stops answering (Vault down); leases stay until `revokeAll()`. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Cleanup for tests: revokes whatever is still leased and stops. */
  async close(): Promise<void> {
    for (const lease of [...this.leases.values()]) await this.revoke(lease, 'revoke');
    for (const token of this.liveTokens.values()) clearTimeout(token.timer);
    this.liveTokens.clear();
    await this.stop();
  }

  count(op: StandinCall['op']): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin');
    let body: Record<string, unknown> = {};
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      if (text !== '') body = JSON.parse(text) as Record<string, unknown>;
      const answer = await this.route(req.method ?? 'GET', url.pathname, body, req.headers['x-vault-token']);
      if (answer instanceof Reply) send(res, answer.status, answer.body);
      else send(res, answer === undefined ? 204 : 200, answer);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      this.calls.push({ op: 'refused', status });
      send(res, status, { errors: [(err as Error).message] });
    }
  }

  private async route(
    method: string,
    path: string,
    body: Record<string, unknown>,
    header: string | string[] | undefined,
  ): Promise<object | undefined> {
    const login = /^\/v1\/auth\/([^/]+)\/login$/.exec(path);
    if (method === 'POST' && login && login[1] !== 'token') {
      return 'iam_http_request_method' in body ? this.awsLogin(login[1]!, body) : this.login(login[1]!, body);
    }
    if ((method === 'GET' || method === 'HEAD') && path === '/v1/sys/health') return this.health();
    const token = typeof header === 'string' ? header : '';
    const admin = await this.bootstrapRoute(method, path.slice('/v1/'.length), body, token);
    if (admin !== NOT_BOOTSTRAP) return admin;
    if (!this.liveTokens.has(token)) throw new HttpError(403, 'permission denied');
    const creds = /^\/v1\/database\/creds\/([A-Za-z0-9_.-]+)$/.exec(path);
    if (method === 'GET' && creds) return this.creds(token, creds[1]!);
    if (method === 'PUT' && path === '/v1/sys/leases/renew') return this.renew(body);
    if (method === 'PUT' && path === '/v1/sys/leases/revoke') {
      const lease = this.leases.get(String(body.lease_id));
      if (lease) await this.revoke(lease, 'revoke');
      return undefined;
    }
    if (method === 'POST' && path === '/v1/auth/token/renew-self') {
      const ttl = this.options.tokenSeconds ?? 60;
      this.scheduleToken(token, ttl);
      this.calls.push({ op: 'renew-self', status: 200 });
      return { auth: { client_token: token, lease_duration: ttl, renewable: true } };
    }
    if (method === 'POST' && path === '/v1/auth/token/revoke-self') {
      await this.revokeToken(token);
      this.calls.push({ op: 'revoke-self', status: 204 });
      return undefined;
    }
    throw new HttpError(404, `the stand-in does not implement ${method} ${path}`);
  }

  private health(): Reply {
    return new Reply(this.sealed ? 503 : 200, {
      initialized: true,
      sealed: this.sealed,
      standby: false,
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(Date.now() / 1000),
      version: '1.18.0+standin',
      cluster_name: 'vault-cluster-standin',
      cluster_id: 'standin',
    });
  }

  /** The endpoints bootstrap writes to; NOT_BOOTSTRAP for any other path. */
  private async bootstrapRoute(
    method: string,
    path: string,
    body: Record<string, unknown>,
    token: string,
  ): Promise<object | undefined | typeof NOT_BOOTSTRAP> {
    const auth = /^sys\/auth\/(.+)$/.exec(path);
    const secrets = /^sys\/mounts\/(.+)$/.exec(path);
    const policy = /^sys\/policies\/acl\/([^/]+)$/.exec(path);
    const jwtConfig = /^auth\/([^/]+)\/config$/.exec(path);
    const jwtRole = /^auth\/([^/]+)\/role\/([^/]+)$/.exec(path);
    const dbConfig = /^database\/config\/([^/]+)$/.exec(path);
    const dbRole = /^database\/roles\/([^/]+)$/.exec(path);
    const write = method === 'POST' || method === 'PUT';
    const known =
      (method === 'GET' && (path === 'sys/auth' || path === 'sys/mounts')) ||
      (write && (auth ?? secrets ?? policy ?? jwtConfig ?? jwtRole ?? dbConfig ?? dbRole) !== null);
    if (!known) return NOT_BOOTSTRAP;
    const root = this.options.rootToken;
    if (
      root === undefined ||
      token.length !== root.length ||
      !timingSafeEqual(Buffer.from(token), Buffer.from(root))
    )
      throw new HttpError(403, 'permission denied');

    if (path === 'sys/auth') return listing(this.authMounts);
    if (path === 'sys/mounts') return listing(this.secretMounts);
    if (auth) this.enable(this.authMounts, auth[1]!, body);
    else if (secrets) this.enable(this.secretMounts, secrets[1]!, body);
    else if (policy) {
      if (typeof body.policy !== 'string' || body.policy === '')
        throw new HttpError(400, "'policy' parameter not supplied or empty");
      this.policies.set(policy[1]!, body.policy);
    } else if (jwtConfig) await this.configureJwt(jwtConfig[1]!, body);
    else if (jwtRole) this.writeJwtRole(jwtRole[1]!, jwtRole[2]!, body);
    else if (dbConfig) await this.configureDatabase(dbConfig[1]!, body);
    else if (dbRole) this.writeDatabaseRole(dbRole[1]!, body);
    this.writes.push({ method, path, body });
    return undefined;
  }

  private enable(mounts: Map<string, Mount>, path: string, body: Record<string, unknown>): void {
    const key = `${path.replace(/\/$/, '')}/`;
    if (typeof body.type !== 'string' || body.type === '')
      throw new HttpError(400, 'backend type must be specified');
    if (mounts.has(key)) throw new HttpError(400, `path is already in use at ${key}`);
    mounts.set(key, mount(body.type, typeof body.description === 'string' ? body.description : ''));
  }

  private requireMount(mounts: Map<string, Mount>, key: string, type: string, route: string): void {
    if (mounts.get(key)?.type !== type)
      throw new HttpError(404, `no handler for route "${route}". route entry not found.`);
  }

  private async configureJwt(mountPath: string, body: Record<string, unknown>): Promise<void> {
    this.requireMount(this.authMounts, `${mountPath}/`, 'jwt', `auth/${mountPath}/config`);
    const set = ['jwt_validation_pubkeys', 'jwks_url', 'oidc_discovery_url'].filter((k) => {
      const v = body[k];
      return Array.isArray(v) ? v.length > 0 : typeof v === 'string' && v !== '';
    });
    if (set.length !== 1)
      throw new HttpError(
        400,
        "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set",
      );
    if (typeof body.jwks_url === 'string' && body.jwks_url !== '') {
      try {
        const res = await fetch(body.jwks_url, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
        const keys = ((await res.json()) as { keys?: unknown }).keys;
        if (!Array.isArray(keys)) throw new Error('the document has no keys');
      } catch (err) {
        throw new HttpError(400, `error checking jwks URL: ${(err as Error).message}`);
      }
    }
    this.jwtConfigs.set(mountPath, body);
  }

  private writeJwtRole(mountPath: string, name: string, body: Record<string, unknown>): void {
    this.requireMount(this.authMounts, `${mountPath}/`, 'jwt', `auth/${mountPath}/role/${name}`);
    if ((body.role_type ?? 'oidc') === 'jwt') {
      if (typeof body.user_claim !== 'string' || body.user_claim === '')
        throw new HttpError(400, 'a user claim must be defined on the role');
      const bound = ['bound_audiences', 'bound_subject', 'bound_claims', 'bound_cidrs'].some((k) => {
        const v = body[k];
        return Array.isArray(v) ? v.length > 0 : v !== undefined && v !== '' && v !== null;
      });
      if (!bound)
        throw new HttpError(400, 'must have at least one bound constraint when creating/updating a role');
    }
    this.jwtRoles.set(`${mountPath}/${name}`, body);
  }

  private async configureDatabase(name: string, body: Record<string, unknown>): Promise<void> {
    this.requireMount(this.secretMounts, 'database/', 'database', `database/config/${name}`);
    if (body.plugin_name !== 'postgresql-database-plugin')
      throw new HttpError(400, 'the stand-in implements only postgresql-database-plugin');
    if (typeof body.connection_url !== 'string' || body.connection_url === '')
      throw new HttpError(400, 'connection_url cannot be empty');
    if (body.verify_connection !== false) {
      const url = body.connection_url
        .replaceAll('{{username}}', encodeURIComponent(String(body.username ?? '')))
        .replaceAll('{{password}}', encodeURIComponent(String(body.password ?? '')));
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
      } catch (err) {
        throw new HttpError(
          400,
          `error creating database object: error verifying connection: ${(err as Error).message}`,
        );
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    this.databaseConnections.set(name, body);
  }

  private writeDatabaseRole(name: string, body: Record<string, unknown>): void {
    this.requireMount(this.secretMounts, 'database/', 'database', `database/roles/${name}`);
    if (typeof body.db_name !== 'string' || body.db_name === '')
      throw new HttpError(400, 'database name is required');
    const creation = body.creation_statements;
    if (!(Array.isArray(creation) ? creation.length > 0 : typeof creation === 'string' && creation !== ''))
      throw new HttpError(400, 'empty creation statements');
    this.databaseRoles.set(name, body);
  }

  private async login(mount: string, body: Record<string, unknown>): Promise<object> {
    if (typeof body.jwt !== 'string' || typeof body.role !== 'string')
      throw new HttpError(400, 'missing role or jwt');
    this.jwks ??= createRemoteJWKSet(new URL(await jwksUri(this.options.issuer)));
    try {
      await jwtVerify(body.jwt, this.jwks, {
        issuer: this.options.issuer,
        ...(this.options.audience !== undefined ? { audience: this.options.audience } : {}),
      });
    } catch {
      throw new HttpError(400, 'error validating token');
    }
    return this.issueToken(body.role, mount);
  }

  private issueToken(role: string, mount: string): object {
    const token = `hvs.${randomBytes(18).toString('base64url')}`;
    const ttl = this.options.tokenSeconds ?? 60;
    this.tokens.push(token);
    this.scheduleToken(token, ttl);
    this.calls.push({ op: 'login', role, mount, status: 200 });
    return { auth: { client_token: token, lease_duration: ttl, renewable: true, policies: ['default'] } };
  }

  /** Vault's aws auth, iam type: checks the signed GetCallerIdentity request as STS would. */
  private awsLogin(mount: string, body: Record<string, unknown>): object {
    const aws = this.options.aws;
    if (!aws) throw new HttpError(400, 'aws auth is not enabled');
    if (typeof body.role !== 'string' || body.role === '') throw new HttpError(400, 'missing role');
    const text = (field: string) => {
      const value = body[field];
      if (typeof value !== 'string') throw new HttpError(400, `missing ${field}`);
      return Buffer.from(value, 'base64').toString('utf8');
    };
    if (body.iam_http_request_method !== 'POST')
      throw new HttpError(400, 'iam_http_request_method must be POST');
    const url = new URL(text('iam_request_url'));
    const requestBody = text('iam_request_body');
    if (requestBody !== 'Action=GetCallerIdentity&Version=2011-06-15')
      throw new HttpError(400, 'the request is not GetCallerIdentity');
    const regional = /^sts\.([a-z0-9-]+)\.amazonaws\.com$/.exec(url.hostname);
    if (
      url.protocol !== 'https:' ||
      url.pathname !== '/' ||
      (!regional && url.hostname !== 'sts.amazonaws.com')
    )
      throw new HttpError(400, 'iam_request_url is not an STS endpoint');
    const raw = JSON.parse(text('iam_request_headers')) as Record<string, string | string[]>;
    const headers = new Map(
      Object.entries(raw).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(',') : v]),
    );
    const auth =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/sts\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(
        headers.get('authorization') ?? '',
      );
    if (!auth) throw new HttpError(400, 'malformed Authorization header');
    const [, keyId, day, region, signedHeaders, signature] = auth as unknown as string[];
    const secret = aws.keys[keyId!];
    if (secret === undefined) throw new HttpError(400, 'unknown access key');
    if (region !== (regional?.[1] ?? 'us-east-1')) throw new HttpError(400, 'signed for another region');
    const amzDate = headers.get('x-amz-date') ?? '';
    const signedAt = Date.parse(
      amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
    );
    if (!amzDate.startsWith(day!) || !(Math.abs(Date.now() - signedAt) < 15 * 60_000))
      throw new HttpError(400, 'stale or missing X-Amz-Date');
    const names = signedHeaders!.split(';');
    if (!names.includes('host') || !names.includes('x-amz-date'))
      throw new HttpError(400, 'host and date must be signed');
    if (aws.serverId !== undefined) {
      if (
        !names.includes('x-vault-aws-iam-server-id') ||
        headers.get('x-vault-aws-iam-server-id') !== aws.serverId
      )
        throw new HttpError(400, 'missing or wrong X-Vault-AWS-IAM-Server-ID');
    }
    const value = (name: string) =>
      name === 'host' ? url.host : (headers.get(name) ?? '').trim().replace(/\s+/g, ' ');
    const sha = (data: string) => createHash('sha256').update(data).digest('hex');
    const mac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
    const canonical = `POST\n/\n\n${names.map((n) => `${n}:${value(n)}\n`).join('')}\n${signedHeaders}\n${sha(requestBody)}`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${day}/${region}/sts/aws4_request\n${sha(canonical)}`;
    const key = mac(mac(mac(mac(`AWS4${secret}`, day!), region!), 'sts'), 'aws4_request');
    const expected = mac(key, toSign);
    if (!timingSafeEqual(expected, Buffer.from(signature!, 'hex')))
      throw new HttpError(400, 'the request signature does not match (SignatureDoesNotMatch)');
    this.signatures.push(signature!);
    return this.issueToken(body.role, mount);
  }

  private scheduleToken(token: string, ttl: number): void {
    const previous = this.liveTokens.get(token);
    if (previous) clearTimeout(previous.timer);
    const timer = setTimeout(() => void this.revokeToken(token), ttl * 1000);
    timer.unref();
    this.liveTokens.set(token, { expiresAt: Date.now() + ttl * 1000, timer });
  }

  private async revokeToken(token: string): Promise<void> {
    const entry = this.liveTokens.get(token);
    if (entry) clearTimeout(entry.timer);
    this.liveTokens.delete(token);
    for (const lease of [...this.leases.values()])
      if (lease.token === token) await this.revoke(lease, 'revoke');
  }

  private async creds(token: string, role: string): Promise<object> {
    const suffix = Object.keys(this.options.roles).find((s) => role.endsWith(s));
    if (suffix === undefined) throw new HttpError(400, `unknown role ${role}`);
    const spec = this.options.roles[suffix]!;
    const ttl = this.options.leaseSeconds ?? 60;
    const username =
      `v_${role.replace(/[^a-z0-9]/gi, '_').slice(0, 20)}_${randomBytes(5).toString('hex')}`.toLowerCase();
    const password = randomBytes(18).toString('base64url');
    const expiration = new Date(Date.now() + ttl * 1000).toISOString();
    if (spec.backend === 'postgres') {
      await this.postgres(spec.url, spec.creation, { name: username, password, expiration });
    } else {
      const rules = spec.rules.map((r) => r.replaceAll('{{password}}', password));
      await this.redis(spec.url, ['ACL', 'SETUSER', username, 'reset', ...rules]);
    }
    const id = `database/creds/${role}/${randomBytes(8).toString('hex')}`;
    const lease: Lease = { id, token, username, spec, expiresAt: 0, timer: setTimeout(() => undefined, 0) };
    this.leases.set(id, lease);
    this.extend(lease, ttl);
    this.issued.push({ username, password, backend: spec.backend });
    this.calls.push({ op: 'creds', role, username, leaseId: id, status: 200 });
    return {
      lease_id: id,
      lease_duration: ttl,
      renewable: true,
      data: { username, password },
    };
  }

  private async renew(body: Record<string, unknown>): Promise<object> {
    const lease = this.leases.get(String(body.lease_id));
    if (!lease) throw new HttpError(400, 'lease not found');
    const ttl =
      typeof body.increment === 'number' && body.increment > 0
        ? body.increment
        : (this.options.leaseSeconds ?? 60);
    this.extend(lease, ttl);
    if (lease.spec.backend === 'postgres') {
      await this.postgres(lease.spec.url, [`ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}'`], {
        name: lease.username,
        password: '',
        expiration: new Date(lease.expiresAt).toISOString(),
      });
    }
    this.calls.push({ op: 'renew', username: lease.username, leaseId: lease.id, status: 200 });
    return { lease_id: lease.id, lease_duration: ttl, renewable: true };
  }

  private extend(lease: Lease, ttl: number): void {
    clearTimeout(lease.timer);
    lease.expiresAt = Date.now() + ttl * 1000;
    lease.timer = setTimeout(() => void this.revoke(lease, 'expire'), ttl * 1000);
    lease.timer.unref();
  }

  private async revoke(lease: Lease, op: 'revoke' | 'expire'): Promise<void> {
    if (!this.leases.delete(lease.id)) return;
    clearTimeout(lease.timer);
    if (lease.spec.backend === 'postgres') {
      await this.postgres(lease.spec.url, lease.spec.revocation ?? ['DROP ROLE IF EXISTS "{{name}}"'], {
        name: lease.username,
        password: '',
        expiration: '',
      });
    } else {
      await this.redis(lease.spec.url, ['ACL', 'DELUSER', lease.username]);
    }
    this.calls.push({ op, username: lease.username, leaseId: lease.id, status: 204 });
  }

  private async postgres(url: string, statements: string[], values: Record<string, string>): Promise<void> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (const statement of statements) {
        await client.query(statement.replace(/\{\{(\w+)\}\}/g, (_, k: string) => values[k] ?? ''));
      }
    } finally {
      await client.end();
    }
  }

  private async redis(url: string, command: string[]): Promise<void> {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await client.connect();
      await client.call(command[0]!, ...command.slice(1));
    } finally {
      client.disconnect();
    }
  }
}

/** A reply with a status other than 200/204 (sys/health). */
class Reply {
  constructor(
    readonly status: number,
    readonly body: object,
  ) {}
}

const NOT_BOOTSTRAP = Symbol('not a bootstrap endpoint');

function mount(type: string, description: string): Mount {
  return { type, description, accessor: `${type}_${randomBytes(4).toString('hex')}`, options: null };
}

/** A list answer as Vault sends it: the mounts under `data`. */
function listing(mounts: Map<string, Mount>): object {
  const data = Object.fromEntries(
    [...mounts].map(([path, m]) => [
      path,
      {
        ...m,
        config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false },
        local: false,
        seal_wrap: false,
        external_entropy_access: false,
      },
    ]),
  );
  return {
    request_id: randomBytes(8).toString('hex'),
    lease_id: '',
    lease_duration: 0,
    renewable: false,
    data,
    warnings: null,
  };
}

async function jwksUri(issuer: string): Promise<string> {
  const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  const doc = (await res.json()) as { jwks_uri: string };
  return doc.jwks_uri;
}

function send(res: ServerResponse, status: number, body: object | undefined): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// ---------------------------------------------------------------------------------------------
// Setup shared by the Vault tests: alice's JWT from the dev IdP (device flow, the test plays the
// person), and a private PostgreSQL schema owned by a NOLOGIN group role. Issued roles join the
// group and default to it (SET role), so tables the driver creates belong to the group and an
// issued role can be dropped on revocation.
// ---------------------------------------------------------------------------------------------

/**
 * Alice's access token from a device login; starts the IdP unless it is running. The tokens are
 * cached in `home` (PRISM_HOME) when given, so the CLI run with that home calls as alice.
 */
export async function loginAlice(
  idp: DevIdp,
  home = mkdtempSync(join(tmpdir(), 'prism-vault-home-')),
): Promise<string> {
  const issuer = idp.issuer || (await idp.start());
  const tokens = await deviceLogin(
    { issuer, clientId: 'prismctl', scopes: DEFAULT_SCOPES },
    new TokenCache(home),
    (p) => void approveDeviceCode(p.verificationUri, p.userCode, 'alice@example.com'),
    { intervalSeconds: 0.05 },
  );
  return tokens.accessToken;
}

export interface PostgresSandbox {
  schema: string;
  owner: string;
  role: StandinPostgresRole;
  drop(): Promise<void>;
}

/** A schema owned by a group role; the stand-in's creation statements put issued roles in it. */
export async function postgresSandbox(suffix: string): Promise<PostgresSandbox> {
  const schema = `vault_${suffix}`;
  const owner = `vault_owner_${suffix}`;
  const admin = await connectPostgres();
  try {
    await admin.query(`CREATE ROLE "${owner}" NOLOGIN`);
    await admin.query(`GRANT "${owner}" TO CURRENT_USER`);
    await admin.query(`CREATE SCHEMA "${schema}" AUTHORIZATION "${owner}"`);
  } finally {
    await admin.end();
  }
  return {
    schema,
    owner,
    role: {
      backend: 'postgres',
      url: postgresUrl(),
      creation: [
        `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE "${owner}"`,
        `ALTER ROLE "{{name}}" SET search_path = "${schema}"`,
        `ALTER ROLE "{{name}}" SET role = "${owner}"`,
      ],
    },
    async drop() {
      const client = await connectPostgres();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.query(`DROP ROLE IF EXISTS "${owner}"`);
      } finally {
        await client.end();
      }
    },
  };
}

export function redisRole(namespace: string): StandinRedisRole {
  return { backend: 'redis', url: redisUrl(), rules: ['on', '>{{password}}', `~${namespace}:*`, '+@all'] };
}

/** The database URL without credentials, as a backends catalog names it. */
export function postgresEndpoint(): string {
  const url = new URL(postgresUrl());
  url.username = '';
  url.password = '';
  return url.toString();
}
