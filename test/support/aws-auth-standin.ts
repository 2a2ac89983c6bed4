/**
 * Vault's `aws` auth method (iam type) as a STAND-IN in front of the real OpenBao, because OpenBao
 * has no aws auth method to run here: OpenBao 2.7.2 builds in only approle, cert, jwt,
 * kubernetes, oidc and userpass (`bao plugin list auth`), and its aws method is an external
 * plugin (openbao/openbao-plugins, auth/aws) that no registry reachable here serves (the Go module
 * proxy refuses github.com/openbao/openbao-plugins; no PyPI, npm or Debian package carries it).
 *
 * So this server on 127.0.0.1 forwards every request to the real OpenBao unchanged, except
 * `POST /v1/auth/<mount>/login`, which it answers the way the aws method's iam login does:
 *
 * - the login body's iam_http_request_method must be POST, iam_request_url an STS URL and
 *   iam_request_body GetCallerIdentity; iam_request_headers (base64 JSON, name → [values]) may
 *   hold only the headers Vault allows by default (allowed_sts_header_values);
 * - with a server id configured (iam_server_id_header_value), X-Vault-AWS-IAM-Server-ID must be
 *   among the signed headers with that value;
 * - the request goes, unchanged and with the Host it was signed for, to the configured STS
 *   endpoint (sts_endpoint; in tests the STS stand-in, sts-standin.ts), and an STS refusal is
 *   answered as Vault does: 400 "error making upstream request: received error code ... from STS";
 * - the ARN STS answers (an assumed role as its role ARN) must be one of the role's
 *   bound_iam_principal_arn;
 * - the login then gets a real token of the real server: an orphan token made with the root token
 *   (auth/token/create-orphan) with the role's policies and TTL, renewable. Everything done with
 *   it (database/creds, lease renew and revoke, renew-self, revoke-self) is OpenBao's own.
 *
 * What it cannot show: the aws method's own code (its header checks, ARN resolution, identity
 * aliases) and real STS; only the request Prism signs and sends, and what follows the login.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { vaultApi } from './real-vault.js';

export interface AwsAuthRole {
  /** bound_iam_principal_arn: IAM users or roles that may log in. */
  boundArns: string[];
  policies: string[];
  /** token_ttl, seconds. Default 3600. */
  ttlSeconds?: number;
}

export interface AwsAuthStandinOptions {
  /** The real OpenBao behind it, and its root token (to make the login's token). */
  vault: { address: string; rootToken: string };
  /** Where GetCallerIdentity is sent (auth/<mount>/config/client sts_endpoint). */
  stsEndpoint: string;
  /** The auth mount answered here. Default `aws`. */
  mount?: string;
  /** iam_server_id_header_value: the X-Vault-AWS-IAM-Server-ID the login must have signed. */
  serverId?: string;
  roles: Record<string, AwsAuthRole>;
}

/** A login this stand-in accepted: the accessor of the real token it got for it. */
export interface AwsAuthLogin {
  role: string;
  arn: string;
  accessor: string;
}

/** Vault's default allowed_sts_header_values, lower case. */
const ALLOWED_HEADERS = new Set([
  'content-type',
  'content-length',
  'user-agent',
  'x-amz-date',
  'authorization',
  'x-amz-security-token',
  'host',
  'x-vault-aws-iam-server-id',
]);
const SERVER_ID_HEADER = 'x-vault-aws-iam-server-id';

class LoginRefused extends Error {}

export class AwsAuthStandin {
  /** http://127.0.0.1:<port>: the Vault address to give Prism. */
  address = '';
  readonly logins: AwsAuthLogin[] = [];
  private server?: Server;

  constructor(private readonly options: AwsAuthStandinOptions) {}

  async start(): Promise<string> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    this.server = server;
    this.address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.address;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const path = (req.url ?? '/').split('?')[0]!;
    try {
      if (req.method === 'POST' && path === `/v1/auth/${this.options.mount ?? 'aws'}/login`) {
        const answer = await this.login(JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>);
        send(res, 200, answer);
      } else {
        await this.forward(req, body, res);
      }
    } catch (err) {
      send(res, err instanceof LoginRefused ? 400 : 500, { errors: [(err as Error).message] });
    }
  }

  /** Passes a request to the real OpenBao and its answer back, unchanged. */
  private async forward(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    const headers: Record<string, string> = {};
    for (const name of ['x-vault-token', 'content-type', 'accept']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const answer = await fetch(`${this.options.vault.address}${req.url ?? '/'}`, {
      method: req.method ?? 'GET',
      headers,
      ...(body.length > 0 ? { body } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    const text = Buffer.from(await answer.arrayBuffer());
    res.writeHead(answer.status, {
      'content-type': answer.headers.get('content-type') ?? 'application/json',
      'content-length': text.length,
    });
    res.end(text);
  }

  private async login(body: Record<string, unknown>): Promise<object> {
    const roleName = typeof body.role === 'string' ? body.role : '';
    const role = this.options.roles[roleName];
    if (!role) throw new LoginRefused(`entry for role ${roleName} not found`);
    const decoded = (field: string): string => {
      const value = body[field];
      if (typeof value !== 'string' || value === '') throw new LoginRefused(`missing ${field}`);
      return Buffer.from(value, 'base64').toString('utf8');
    };
    if (body.iam_http_request_method !== 'POST') {
      throw new LoginRefused('invalid iam_http_request_method; only POST is supported');
    }
    const url = new URL(decoded('iam_request_url'));
    if (url.protocol !== 'https:' || !/^sts(\.[a-z0-9-]+)?\.amazonaws\.com$/.test(url.hostname)) {
      throw new LoginRefused('iam_request_url is not an STS endpoint');
    }
    const requestBody = decoded('iam_request_body');
    if (requestBody !== 'Action=GetCallerIdentity&Version=2011-06-15') {
      throw new LoginRefused('iam_request_body is not GetCallerIdentity');
    }
    const raw = JSON.parse(decoded('iam_request_headers')) as Record<string, string[] | string>;
    const headers = new Map<string, string>();
    for (const [name, value] of Object.entries(raw)) {
      if (!ALLOWED_HEADERS.has(name.toLowerCase())) throw new LoginRefused(`invalid request header: ${name}`);
      headers.set(name.toLowerCase(), Array.isArray(value) ? value.join(',') : value);
    }
    if (this.options.serverId !== undefined) this.checkServerId(headers);

    const arn = await this.callerIdentity(url, requestBody, headers);
    if (!role.boundArns.includes(canonicalArn(arn))) {
      throw new LoginRefused(`IAM principal ${arn} does not belong to the role ${roleName}`);
    }
    const ttl = role.ttlSeconds ?? 3600;
    const made = await vaultApi<{ auth: Record<string, unknown> }>(
      'POST',
      'auth/token/create-orphan',
      {
        policies: role.policies,
        ttl: `${ttl}s`,
        renewable: true,
        display_name: `aws-${roleName}`,
        meta: { role: roleName, arn, mount: this.options.mount ?? 'aws' },
      },
      this.options.vault.rootToken,
      this.options.vault.address,
    );
    this.logins.push({ role: roleName, arn, accessor: String(made.auth.accessor) });
    return { auth: made.auth };
  }

  private checkServerId(headers: Map<string, string>): void {
    const value = headers.get(SERVER_ID_HEADER);
    if (value === undefined) {
      throw new LoginRefused(
        'error validating X-Vault-AWS-IAM-Server-ID header: missing header "X-Vault-AWS-IAM-Server-ID"',
      );
    }
    const signed = /SignedHeaders=([a-z0-9;-]+)/.exec(headers.get('authorization') ?? '')?.[1]?.split(';');
    if (!signed?.includes(SERVER_ID_HEADER)) {
      throw new LoginRefused(
        'error validating X-Vault-AWS-IAM-Server-ID header: X-Vault-AWS-IAM-Server-ID is not signed',
      );
    }
    if (value !== this.options.serverId) {
      throw new LoginRefused(
        `error validating X-Vault-AWS-IAM-Server-ID header: expected ${this.options.serverId} but got ${value}`,
      );
    }
  }

  /** Sends the signed request to STS with its signed Host, as Vault does; the caller's ARN. */
  private async callerIdentity(url: URL, body: string, headers: Map<string, string>): Promise<string> {
    const target = new URL(url.pathname + url.search, this.options.stsEndpoint);
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const sent = new Map(headers);
      sent.set('host', url.host);
      // fetch() sets Host from the URL; STS must see the Host the request was signed for.
      const req = httpRequest(
        target,
        { method: 'POST', headers: Object.fromEntries(sent), timeout: 10_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error('STS did not answer')));
      req.on('error', reject);
      req.end(body);
    }).catch((err: unknown) => {
      throw new LoginRefused(`error making upstream request: ${(err as Error).message}`);
    });
    if (answer.status !== 200) {
      throw new LoginRefused(
        `error making upstream request: received error code ${answer.status} from STS: ${answer.text}`,
      );
    }
    const arn = /<Arn>([^<]+)<\/Arn>/.exec(answer.text)?.[1];
    if (!arn) throw new LoginRefused('error parsing STS response: no Arn');
    return arn;
  }
}

/** An assumed role's session ARN as its role ARN, as Vault binds it; other ARNs unchanged. */
function canonicalArn(arn: string): string {
  const assumed = /^arn:aws:sts::(\d+):assumed-role\/([^/]+)\/.+$/.exec(arn);
  return assumed ? `arn:aws:iam::${assumed[1]}:role/${assumed[2]}` : arn;
}

function send(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
