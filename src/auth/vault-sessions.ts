/**
 * A Vault session (DESIGN.md §7): a login with a JWT, the Vault token it yields, and the leases
 * obtained with that token. Leases and the token are renewed at half their duration (timers are
 * unref'd, so a session never keeps a process alive), retried every second while Vault is
 * unreachable, and no longer renewed once Vault refuses (a lease revoked elsewhere, a revoked
 * token: the session is then no longer `usable`); `close()` revokes every lease, then the
 * token. Nothing here logs or throws a token, a JWT or a password.
 *
 * The service identity is chosen from the environment: a configured JWT file, then
 * PRISM_VAULT_JWT, then the Kubernetes service-account token when the file exists, then AWS
 * credentials in the environment (Vault's aws auth method, iam type; see aws-iam.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { PrismError, isPrismError } from '../errors.js';
import { awsCredentialsFromEnv, awsIamLoginFields, type AwsCredentials } from './aws-iam.js';
import type { VaultClient, VaultLogin } from './vault-client.js';

export const KUBERNETES_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface SessionLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface JwtIdentity {
  jwt: string;
  /** Where the JWT came from, for logs: a file path or the variable name. */
  source: string;
}

/** AWS IAM credentials; logs in at its own mount (PRISM_VAULT_AWS_MOUNT, default aws). */
export interface AwsIamIdentity {
  aws: {
    credentials: AwsCredentials;
    /** AWS_REGION: sign for the regional STS endpoint instead of the global one. */
    region?: string;
    /** PRISM_VAULT_AWS_IAM_SERVER_ID: the X-Vault-AWS-IAM-Server-ID header value. */
    serverId?: string;
  };
  mount: string;
  source: string;
}

export type ServiceIdentity = JwtIdentity | AwsIamIdentity;

/** The service identity, chosen automatically; E_USAGE when there is none. */
export function serviceIdentity(
  options: { jwtFile?: string; env?: NodeJS.ProcessEnv; kubernetesTokenFile?: string } = {},
): ServiceIdentity {
  const env = options.env ?? process.env;
  const fromFile = (path: string): ServiceIdentity => {
    let jwt: string;
    try {
      jwt = readFileSync(path, 'utf8').trim();
    } catch (err) {
      throw new PrismError('E_USAGE', `cannot read the Vault JWT file ${path}`, { cause: err });
    }
    if (jwt === '') throw new PrismError('E_USAGE', `the Vault JWT file ${path} is empty`);
    return { jwt, source: path };
  };
  if (options.jwtFile !== undefined && options.jwtFile !== '') return fromFile(options.jwtFile);
  const fromEnv = env.PRISM_VAULT_JWT?.trim();
  if (fromEnv) return { jwt: fromEnv, source: 'PRISM_VAULT_JWT' };
  const k8s = options.kubernetesTokenFile ?? KUBERNETES_TOKEN_FILE;
  if (existsSync(k8s)) return fromFile(k8s);
  const aws = awsIdentity(env);
  if (aws) return aws;
  throw new PrismError('E_USAGE', 'Vault is configured but this process has no identity to log in with', {
    hint: `pass --vault-jwt-file, set PRISM_VAULT_JWT, run with a Kubernetes service-account token at ${k8s}, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
  });
}

function awsIdentity(env: NodeJS.ProcessEnv): AwsIamIdentity | undefined {
  const credentials = awsCredentialsFromEnv(env);
  if (!credentials) return undefined;
  const region = env.AWS_REGION?.trim();
  const serverId = env.PRISM_VAULT_AWS_IAM_SERVER_ID?.trim();
  return {
    aws: { credentials, ...(region ? { region } : {}), ...(serverId ? { serverId } : {}) },
    mount: env.PRISM_VAULT_AWS_MOUNT?.trim() || 'aws',
    source: 'AWS_ACCESS_KEY_ID',
  };
}

/** Logs in with either identity: `auth/<mount>/login` {role, jwt} or {role, iam_*}. */
function loginAs(
  client: VaultClient,
  identity: ServiceIdentity,
  jwtMount: string,
  role: string,
): { mount: string; login: Promise<VaultLogin> } {
  if ('jwt' in identity) return { mount: jwtMount, login: client.login(jwtMount, role, identity.jwt) };
  const { credentials, region, serverId } = identity.aws;
  const fields = awsIamLoginFields(credentials, {
    ...(region !== undefined ? { region } : {}),
    ...(serverId !== undefined ? { serverId } : {}),
  });
  return { mount: identity.mount, login: client.loginWith(identity.mount, { role, ...fields }) };
}

export interface VaultSessionOptions {
  client: VaultClient;
  /** Auth mount for a JWT: jwt (default) or kubernetes. An AWS identity brings its own. */
  mount?: string;
  /** Vault role to log in as. */
  role: string;
  /** Log in with this JWT, or with `identity`. */
  jwt?: string;
  identity?: ServiceIdentity;
  logger?: SessionLogger;
}

export interface LeasedCredentials {
  username: string;
  password: string;
  leaseId: string;
  /** Seconds. */
  duration: number;
}

interface Lease {
  id: string;
  role: string;
  duration: number;
  timer?: NodeJS.Timeout;
}

/** Retry delay after a failed renewal, in ms. */
const RENEW_RETRY_MS = 1000;

export class VaultSession {
  private readonly leases = new Map<string, Lease>();
  private tokenTimer?: NodeJS.Timeout;
  private closed = false;
  /** Vault no longer accepts the token (revoked, or a renewal was refused). */
  private lost = false;
  /** When the token runs out unless renewed (ms since the epoch); undefined when it does not. */
  private tokenExpiresAtMs?: number;

  private constructor(
    private readonly client: VaultClient,
    private readonly token: string,
    private tokenDuration: number,
    private readonly logger?: SessionLogger,
    /** The token's accessor ('' when Vault gave none). */
    readonly accessor = '',
  ) {
    if (tokenDuration > 0) this.tokenExpiresAtMs = Date.now() + tokenDuration * 1000;
  }

  /**
   * False once the session is closed or its token is no longer good: Vault refused it or a
   * renewal, or it ran out. A caller then logs in again instead of leasing with a dead token.
   */
  get usable(): boolean {
    if (this.closed || this.lost) return false;
    return this.tokenExpiresAtMs === undefined || Date.now() < this.tokenExpiresAtMs;
  }

  /**
   * A session over a token another process logged in with (a shared caller session,
   * request-sessions.ts): it leases with that token but renews and revokes nothing by itself —
   * the process that opened the session does; `close()` here only stops using it.
   */
  static resume(client: VaultClient, token: string, logger?: SessionLogger): VaultSession {
    const session = new VaultSession(client, token, 0, logger);
    session.borrowed = true;
    return session;
  }

  private borrowed = false;

  /** Logs in; E_UNAUTHENTICATED when Vault refuses the JWT, E_UNAVAILABLE when Vault is down. */
  static async open(options: VaultSessionOptions): Promise<VaultSession> {
    const identity =
      options.identity ?? (options.jwt !== undefined ? { jwt: options.jwt, source: 'jwt' } : undefined);
    if (identity === undefined) throw new PrismError('E_USAGE', 'a Vault session needs a JWT or an identity');
    const attempt = loginAs(options.client, identity, options.mount ?? 'jwt', options.role);
    const mount = attempt.mount;
    const login = await attempt.login;
    const session = new VaultSession(
      options.client,
      login.clientToken,
      login.leaseDuration,
      options.logger,
      login.accessor,
    );
    options.logger?.info(
      { vault: options.client.address, mount, role: options.role, ttlSeconds: login.leaseDuration },
      'vault session opened',
    );
    if (login.renewable && login.leaseDuration > 0) session.scheduleToken(login.leaseDuration);
    return session;
  }

  /** Fresh database credentials for a Vault role; the lease lives as long as the session. */
  async databaseCredentials(role: string): Promise<LeasedCredentials> {
    this.assertOpen();
    const creds = await this.client.databaseCredentials(this.token, role).catch((err: unknown) => {
      if (isPrismError(err) && err.code === 'E_UNAUTHENTICATED') this.lost = true;
      throw err;
    });
    const lease: Lease = { id: creds.leaseId, role, duration: creds.leaseDuration };
    if (this.borrowed)
      return {
        username: creds.username,
        password: creds.password,
        leaseId: creds.leaseId,
        duration: creds.leaseDuration,
      };
    this.leases.set(lease.id, lease);
    this.logger?.info(
      { role, username: creds.username, ttlSeconds: creds.leaseDuration },
      'vault database credentials leased',
    );
    if (creds.renewable && creds.leaseDuration > 0) this.scheduleLease(lease, creds.leaseDuration);
    return {
      username: creds.username,
      password: creds.password,
      leaseId: creds.leaseId,
      duration: creds.leaseDuration,
    };
  }

  /**
   * A secrets-engine call with this session's token (`POST /v1/<path>`, e.g. transit); its
   * answer's `data`. E_PERMISSION_DENIED when the token's policy refuses the path.
   */
  async write(path: string, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.assertOpen();
    return this.client.write(this.token, path, payload).catch((err: unknown) => {
      if (isPrismError(err) && err.code === 'E_UNAUTHENTICATED') this.lost = true;
      throw err;
    });
  }

  /**
   * Takes over renewing and revoking a lease another process obtained with this session's token
   * (a worker that borrowed the session leased it).
   */
  adoptLease(leaseId: string, role: string, durationSeconds: number): void {
    if (this.closed || this.borrowed || this.leases.has(leaseId)) return;
    const lease: Lease = { id: leaseId, role, duration: durationSeconds };
    this.leases.set(leaseId, lease);
    if (durationSeconds > 0) this.scheduleLease(lease, durationSeconds);
  }

  /** Lease ids this session renews and will revoke. */
  leaseIds(): string[] {
    return [...this.leases.keys()];
  }

  /** The Vault token, only to seal it into a shared caller session (session-seal.ts). */
  tokenForSealing(): string {
    return this.token;
  }

  /**
   * With this session's token, revokes the leases of a session whose owner is gone (a crashed
   * proxy's caller session; needs `sys/leases/revoke`), then its token by accessor when the policy
   * allows `auth/token/revoke-accessor` (false when it does not: the token then lapses at its TTL,
   * and only the dead owner ever held it). Lease failures are thrown: backends hold the users.
   */
  async revokeForeign(leaseIds: readonly string[], accessor: string): Promise<boolean> {
    this.assertOpen();
    for (const id of leaseIds) await this.client.revokeLease(this.token, id);
    if (accessor === '') return false;
    try {
      await this.client.revokeAccessor(this.token, accessor);
      return true;
    } catch (err) {
      this.logger?.warn({ err: reason(err) }, "revoking a departed session's token by accessor failed");
      return false;
    }
  }

  /** Revokes one lease now (its backend user is no longer needed); unknown leases are ignored. */
  async revoke(leaseId: string): Promise<void> {
    const lease = this.leases.get(leaseId);
    if (!lease || this.closed) return;
    this.leases.delete(leaseId);
    clearTimeout(lease.timer);
    await this.client.revokeLease(this.token, leaseId);
    this.logger?.info({ role: lease.role }, 'vault lease revoked');
  }

  /** Number of live leases (for status and tests). */
  get leaseCount(): number {
    return this.leases.size;
  }

  /** Revokes every lease, then the token; tries them all and rethrows the first failure. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.borrowed) return;
    clearTimeout(this.tokenTimer);
    let failure: { error: unknown } | undefined;
    for (const lease of [...this.leases.values()].reverse()) {
      clearTimeout(lease.timer);
      try {
        await this.client.revokeLease(this.token, lease.id);
      } catch (err) {
        failure ??= { error: err };
      }
    }
    this.leases.clear();
    try {
      await this.client.revokeSelf(this.token);
    } catch (err) {
      failure ??= { error: err };
    }
    this.logger?.info({ vault: this.client.address }, 'vault session closed: leases and token revoked');
    if (failure) throw failure.error;
  }

  private assertOpen(): void {
    if (this.closed) throw new PrismError('E_UNAVAILABLE', 'the Vault session is closed');
  }

  private scheduleLease(lease: Lease, seconds: number, delayMs = (seconds * 1000) / 2): void {
    lease.timer = setTimeout(() => void this.renewLease(lease), delayMs);
    lease.timer.unref();
  }

  private async renewLease(lease: Lease): Promise<void> {
    if (this.closed || !this.leases.has(lease.id)) return;
    try {
      const duration = await this.client.renewLease(this.token, lease.id, lease.duration);
      if (this.closed) return;
      if (duration > 0) this.scheduleLease(lease, duration);
    } catch (err) {
      if (this.closed) return;
      if (!transient(err)) {
        // Revoked elsewhere, expired, or its token is gone: Vault will not renew it, ever.
        this.leases.delete(lease.id);
        this.logger?.warn({ role: lease.role, err: reason(err) }, 'vault lease is gone; no longer renewed');
        return;
      }
      this.logger?.warn({ role: lease.role, err: reason(err) }, 'vault lease renewal failed; retrying');
      this.scheduleLease(lease, lease.duration, RENEW_RETRY_MS);
    }
  }

  private scheduleToken(seconds: number, delayMs = (seconds * 1000) / 2): void {
    this.tokenTimer = setTimeout(() => void this.renewToken(), delayMs);
    this.tokenTimer.unref();
  }

  private async renewToken(): Promise<void> {
    if (this.closed) return;
    try {
      const duration = await this.client.renewSelf(this.token, this.tokenDuration);
      if (this.closed) return;
      if (duration > 0) {
        this.tokenDuration = duration;
        this.tokenExpiresAtMs = Date.now() + duration * 1000;
        this.scheduleToken(duration);
      }
    } catch (err) {
      if (this.closed) return;
      if (!transient(err)) {
        this.lost = true;
        this.logger?.warn(
          { err: reason(err) },
          'vault token is no longer valid; the session must log in again',
        );
        return;
      }
      this.logger?.warn({ err: reason(err) }, 'vault token renewal failed; retrying');
      this.scheduleToken(this.tokenDuration, RENEW_RETRY_MS);
    }
  }
}

/** Worth retrying: Vault was unreachable or busy. Anything else it answered will not change. */
function transient(err: unknown): boolean {
  return !isPrismError(err) || err.code === 'E_UNAVAILABLE';
}

function reason(err: unknown): string {
  if (isPrismError(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
