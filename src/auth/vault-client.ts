/**
 * A thin Vault HTTP client for exactly the calls Prism sessions make (DESIGN.md §7, §9):
 * `auth/<mount>/login` (jwt, kubernetes or aws), `database/creds/<role>`, `sys/leases/renew`,
 * `sys/leases/revoke`, `auth/token/renew-self`, `auth/token/revoke-self`,
 * `auth/token/revoke-accessor`, and `write` for secrets engines (transit). No SDK. The tests run these calls against a real Vault (OpenBao,
 * test/support/real-vault.ts); only the aws login goes through a stand-in there, as OpenBao has
 * no aws auth method to run.
 *
 * Errors are PrismErrors: E_UNAVAILABLE when Vault cannot be reached or answers 5xx (never a
 * fallback to static credentials), E_UNAUTHENTICATED when Vault refuses the login or the token.
 * Messages name the path and status, never a token, a JWT or a password.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { PrismError } from '../errors.js';

export interface VaultClientOptions {
  /** http(s)://host:port of Vault. */
  address: string;
  /** PEM file of the CA that signed Vault's certificate (https only). */
  caFile?: string;
  /** Per-request timeout. Default 5 s. */
  timeoutMs?: number;
}

export interface VaultLogin {
  clientToken: string;
  /** Names the token without being it: revokes it (auth/token/revoke-accessor) without knowing it. */
  accessor: string;
  /** Seconds; 0 when the token does not expire. */
  leaseDuration: number;
  renewable: boolean;
}

export interface VaultDatabaseCredentials {
  username: string;
  password: string;
  leaseId: string;
  /** Seconds. */
  leaseDuration: number;
  renewable: boolean;
}

export interface VaultCertificate {
  /** PEM: the certificate, then its issuers. */
  chain: string;
  /** PEM private key. */
  privateKey: string;
  /** Unix seconds when the certificate expires. */
  expiration: number;
  serialNumber: string;
}

interface VaultResponse {
  auth?: { client_token?: unknown; accessor?: unknown; lease_duration?: unknown; renewable?: unknown };
  data?: {
    username?: unknown;
    password?: unknown;
    certificate?: unknown;
    private_key?: unknown;
    ca_chain?: unknown;
    issuing_ca?: unknown;
    expiration?: unknown;
    serial_number?: unknown;
  };
  lease_id?: unknown;
  lease_duration?: unknown;
  renewable?: unknown;
  errors?: unknown;
}

export class VaultClient {
  private readonly base: URL;
  private readonly ca?: Buffer;
  private readonly timeoutMs: number;

  constructor(options: VaultClientOptions) {
    try {
      this.base = new URL(options.address);
    } catch {
      throw new PrismError('E_USAGE', `the Vault address ${JSON.stringify(options.address)} is not a URL`);
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new PrismError(
        'E_USAGE',
        `the Vault address must be http:// or https://, not ${this.base.protocol}`,
      );
    }
    if (options.caFile !== undefined) {
      try {
        this.ca = readFileSync(options.caFile);
      } catch (err) {
        throw new PrismError('E_USAGE', `cannot read the Vault CA file ${options.caFile}`, { cause: err });
      }
    }
    this.timeoutMs = options.timeoutMs ?? 5000;
  }

  /** Where Vault is, for messages. */
  get address(): string {
    return this.base.origin;
  }

  /** `POST /v1/auth/<mount>/login` with a JWT (jwt and kubernetes auth methods). */
  login(mount: string, role: string, jwt: string): Promise<VaultLogin> {
    return this.loginWith(mount, { role, jwt });
  }

  /** `POST /v1/auth/<mount>/login` with the method's own fields (e.g. aws: role and iam_*). */
  async loginWith(mount: string, fields: Record<string, unknown>): Promise<VaultLogin> {
    const body = await this.call('POST', `auth/${mount}/login`, undefined, fields, 'login');
    const token = body.auth?.client_token;
    if (typeof token !== 'string' || token === '') {
      throw new PrismError('E_UNAVAILABLE', `Vault at ${this.address} answered the login without a token`);
    }
    return {
      clientToken: token,
      accessor: typeof body.auth?.accessor === 'string' ? body.auth.accessor : '',
      leaseDuration: numberOf(body.auth?.lease_duration),
      renewable: body.auth?.renewable === true,
    };
  }

  /** `GET /v1/database/creds/<role>`: a new backend user with a lease. */
  async databaseCredentials(token: string, role: string): Promise<VaultDatabaseCredentials> {
    const body = await this.call('GET', `database/creds/${role}`, token);
    const { username, password } = body.data ?? {};
    if (typeof username !== 'string' || typeof password !== 'string' || typeof body.lease_id !== 'string') {
      throw new PrismError(
        'E_UNAVAILABLE',
        `Vault at ${this.address} answered database/creds/${role} without username, password and lease`,
      );
    }
    return {
      username,
      password,
      leaseId: body.lease_id,
      leaseDuration: numberOf(body.lease_duration),
      renewable: body.renewable === true,
    };
  }

  /**
   * `POST /v1/<mount>/issue/<role>` (the PKI secrets engine, `path` = `<mount>/issue/<role>`): a
   * new certificate and private key. `chain` is the certificate followed by its issuers.
   */
  async issueCertificate(
    token: string,
    path: string,
    request: { common_name: string; alt_names?: string; ip_sans?: string; ttl?: string },
  ): Promise<VaultCertificate> {
    const body = await this.call('POST', path, token, request);
    const d = body.data ?? {};
    if (typeof d.certificate !== 'string' || typeof d.private_key !== 'string') {
      throw new PrismError(
        'E_UNAVAILABLE',
        `Vault at ${this.address} answered ${path} without a certificate and key`,
      );
    }
    const issuers = Array.isArray(d.ca_chain)
      ? d.ca_chain.filter((c): c is string => typeof c === 'string')
      : typeof d.issuing_ca === 'string'
        ? [d.issuing_ca]
        : [];
    return {
      chain: [d.certificate, ...issuers].map((c) => `${c.trim()}\n`).join(''),
      privateKey: `${d.private_key.trim()}\n`,
      expiration: numberOf(d.expiration),
      serialNumber: typeof d.serial_number === 'string' ? d.serial_number : '',
    };
  }

  /** `PUT /v1/sys/leases/renew`; returns the new lease duration in seconds. */
  async renewLease(token: string, leaseId: string, incrementSeconds: number): Promise<number> {
    const body = await this.call('PUT', 'sys/leases/renew', token, {
      lease_id: leaseId,
      increment: incrementSeconds,
    });
    return numberOf(body.lease_duration);
  }

  /** `PUT /v1/sys/leases/revoke`. */
  async revokeLease(token: string, leaseId: string): Promise<void> {
    await this.call('PUT', 'sys/leases/revoke', token, { lease_id: leaseId });
  }

  /** `POST /v1/auth/token/renew-self`; returns the new lease duration in seconds. */
  async renewSelf(token: string, incrementSeconds?: number): Promise<number> {
    const body = await this.call(
      'POST',
      'auth/token/renew-self',
      token,
      incrementSeconds !== undefined ? { increment: `${incrementSeconds}s` } : {},
    );
    return numberOf(body.auth?.lease_duration);
  }

  /** `POST /v1/auth/token/revoke-accessor`: revokes another token, and its leases, by accessor. */
  async revokeAccessor(token: string, accessor: string): Promise<void> {
    await this.call('POST', 'auth/token/revoke-accessor', token, { accessor });
  }

  /**
   * `POST /v1/<path>` of a secrets engine (transit: vault-transit.ts); the answer's `data`. Vault
   * answers 403 to a token its policy does not let onto the path: E_PERMISSION_DENIED here.
   */
  async write(
    token: string,
    path: string,
    payload: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const body = await this.call('POST', path, token, payload, 'secret');
    return (body.data ?? {}) as Record<string, unknown>;
  }

  /** `POST /v1/auth/token/revoke-self`. */
  async revokeSelf(token: string): Promise<void> {
    await this.call('POST', 'auth/token/revoke-self', token, {});
  }

  private async call(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    token?: string,
    payload?: Record<string, unknown>,
    kind: 'login' | 'call' | 'secret' = 'call',
  ): Promise<VaultResponse> {
    const url = new URL(`/v1/${path}`, this.base);
    const data = payload !== undefined ? JSON.stringify(payload) : undefined;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token !== undefined) headers['x-vault-token'] = token;
    if (data !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(data));
    }
    let res: { status: number; text: string };
    try {
      res = await this.send(url, method, headers, data);
    } catch (err) {
      throw new PrismError(
        'E_UNAVAILABLE',
        `Vault at ${this.address} is unreachable (${describe(err)}) on ${path}`,
        { hint: 'backend credentials come only from Vault; no static credentials are used instead' },
      );
    }
    let body: VaultResponse = {};
    if (res.text !== '') {
      try {
        body = JSON.parse(res.text) as VaultResponse;
      } catch {
        body = {};
      }
    }
    if (res.status >= 200 && res.status < 300) return body;
    // Vault's multi-errors come as "1 error occurred:\n\t* ...\n\n": one line each in our messages.
    const reasons = Array.isArray(body.errors)
      ? body.errors
          .filter((e): e is string => typeof e === 'string')
          .map((e) => e.replace(/\s+/g, ' ').trim())
          .join('; ')
      : '';
    const detail = `Vault at ${this.address} answered ${res.status} on ${path}${reasons ? `: ${reasons}` : ''}`;
    if (res.status === 400 && kind === 'login') throw new PrismError('E_UNAUTHENTICATED', detail);
    if (res.status === 403 && kind === 'secret') throw new PrismError('E_PERMISSION_DENIED', detail);
    if (res.status === 401 || res.status === 403) throw new PrismError('E_UNAUTHENTICATED', detail);
    if (res.status >= 500 || res.status === 429) throw new PrismError('E_UNAVAILABLE', detail);
    throw new PrismError('E_INVALID_ARGUMENT', detail);
  }

  private send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    data: string | undefined,
  ): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const options = { method, headers, timeout: this.timeoutMs };
      const onResponse = (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      };
      const req =
        url.protocol === 'https:'
          ? httpsRequest(url, { ...options, ...(this.ca !== undefined ? { ca: this.ca } : {}) }, onResponse)
          : httpRequest(url, options, onResponse);
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(data);
    });
  }
}

/** One VaultClient per address, with the process's CA file. */
export function vaultClients(caFile: string | undefined): (address: string) => VaultClient {
  const clients = new Map<string, VaultClient>();
  return (address) => {
    let client = clients.get(address);
    if (!client) {
      client = new VaultClient({ address, ...(caFile !== undefined ? { caFile } : {}) });
      clients.set(address, client);
    }
    return client;
  };
}

function numberOf(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function describe(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(describe).join('; ');
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ?? err.message;
  }
  return String(err);
}
