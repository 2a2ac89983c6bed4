/**
 * A KUBERNETES API SERVER STAND-IN for tests (DESIGN.md §7, §9; issue 12): no Kubernetes cluster
 * runs here. A real kube-apiserver is a Go server that needs etcd and its own PKI; none of
 * kube-apiserver, etcd, k3s or kind is installed, the package lists this machine may install
 * from carry only Kubernetes clients, and the container-based clusters (kind, k3s in Docker,
 * minikube) need a Docker daemon (none runs here: the docker CLI reaches none) and images from a
 * container registry. The real Vault (OpenBao 2.7.2's built-in `kubernetes` auth method) is
 * configured against this server instead, through its ordinary `kubernetes_host`,
 * `kubernetes_ca_cert` and `token_reviewer_jwt` settings. Seen against OpenBao 2.7.2: Vault itself
 * refuses a token whose service-account name, namespace or `aud` claim the role does not bind,
 * without a TokenReview; it sends the review without apiVersion and kind (kube-apiserver reads
 * them from the path), with `spec.audiences` set to the role's `audience`.
 *
 * What Vault's kubernetes method asks the API server during `auth/<mount>/login` is one call,
 * and this server implements only that call, the way kube-apiserver answers it:
 *
 *   POST /apis/authentication.k8s.io/v1/tokenreviews
 *   Authorization: Bearer <token_reviewer_jwt>      (Vault's own identity at the API server)
 *   {"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":…,"audiences":[…]}}
 *
 * - The caller must authenticate with a service-account token of this server and be allowed to
 *   create tokenreviews (in a cluster: a ClusterRoleBinding to `system:auth-delegator`; here, the
 *   service accounts given as `reviewers`). Otherwise 401 (no valid bearer) or 403 (valid but not
 *   allowed), with a `Status` object, as kube-apiserver answers.
 * - The reviewed token is authenticated when the signature is this server's service-account
 *   signing key (RS256, like the default `--service-account-key-file` setup), the issuer is
 *   `issuer`, it has not expired, one of its audiences is among `spec.audiences` (or, when that is
 *   empty, the API server's own audience, the issuer), and its service account still exists with
 *   the same uid. Then the answer is 201 with `status.authenticated: true`, `status.user`
 *   (`system:serviceaccount:<namespace>:<name>`, the uid, the service-account groups, the pod in
 *   `extra`) and `status.audiences`. Otherwise 201 with no `authenticated` field and an `error`,
 *   as a real server does for a token it cannot authenticate: a TokenReview reports, it does not
 *   fail.
 *
 * Tokens are made by `serviceAccountToken()`, with the claims kube-apiserver puts in a projected
 * (bound) service-account token: iss, sub, aud, exp, iat, nbf and the `kubernetes.io` object
 * (namespace, serviceaccount name and uid, pod name and uid). The server is https only, with a
 * certificate from test-ca.ts, like every API server; `caPem` is what Vault's `kubernetes_ca_cert`
 * takes. Every TokenReview call is recorded in `calls` (never the tokens themselves).
 *
 *   const kube = new KubeApiStandin({ tls: makeTestCa(), reviewers: [vaultSa] });
 *   const host = await kube.start();
 *   const jwt = await kube.serviceAccountToken(runnerSa, { audiences: ['vault'] });
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { SignJWT, generateKeyPair, jwtVerify, type CryptoKey, type JWTPayload } from 'jose';
import type { TestCa } from './test-ca.js';

export interface ServiceAccount {
  namespace: string;
  name: string;
  /** Default: a fresh uid when the account is created. */
  uid?: string;
}

export interface TokenReviewCall {
  /** The service account the caller authenticated as (`system:serviceaccount:…`), if any. */
  caller?: string;
  /** HTTP status of the answer: 201, or 400/401/403/404/405/422 when refused before reviewing. */
  status: number;
  /** Whether the body named its apiVersion and kind (Vault's does not). */
  typed?: boolean;
  /** spec.audiences as sent. */
  audiences: string[];
  /** status.authenticated of the answer. */
  authenticated: boolean;
  /** status.user.username when authenticated; `sub` of the reviewed token otherwise, if readable. */
  subject?: string;
  /** status.error when not authenticated. */
  error?: string;
}

const TOKENREVIEWS = '/apis/authentication.k8s.io/v1/tokenreviews';
const SA_PREFIX = 'system:serviceaccount:';

const username = (sa: { namespace: string; name: string }) => `${SA_PREFIX}${sa.namespace}:${sa.name}`;

/** A `sub` claim read without verifying anything, for the call record only. */
function unverifiedSubject(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      sub?: unknown;
    };
    return typeof payload.sub === 'string' ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}

export class KubeApiStandin {
  /** The service-account issuer (kube-apiserver `--service-account-issuer`). */
  readonly issuer = 'https://kubernetes.default.svc.cluster.local';
  /** PEM of the CA that signed the server's certificate: Vault's `kubernetes_ca_cert`. */
  readonly caPem: string;
  /** https://127.0.0.1:<port>, once started: Vault's `kubernetes_host`. */
  host = '';
  readonly calls: TokenReviewCall[] = [];
  private server?: Server;
  private keys?: { privateKey: CryptoKey; publicKey: CryptoKey };
  /** Existing service accounts: `system:serviceaccount:ns:name` → uid. */
  private readonly accounts = new Map<string, string>();
  private readonly reviewers: Set<string>;

  constructor(private readonly options: { tls: TestCa; reviewers: ServiceAccount[] }) {
    this.caPem = readFileSync(options.tls.caFile, 'utf8');
    this.reviewers = new Set(options.reviewers.map(username));
    for (const sa of options.reviewers) this.createServiceAccount(sa);
  }

  /** Creates a service account (idempotent); returns its uid. */
  createServiceAccount(sa: ServiceAccount): string {
    const key = username(sa);
    const existing = this.accounts.get(key);
    if (existing !== undefined) return existing;
    const uid = sa.uid ?? randomUUID();
    this.accounts.set(key, uid);
    return uid;
  }

  /** Deletes a service account: its tokens no longer authenticate, as in a cluster. */
  deleteServiceAccount(sa: ServiceAccount): void {
    this.accounts.delete(username(sa));
  }

  /**
   * A projected service-account token for `sa` (created if needed), signed with this server's
   * key: what the kubelet writes to /var/run/secrets/kubernetes.io/serviceaccount/token.
   */
  async serviceAccountToken(
    sa: ServiceAccount,
    options: { audiences?: string[]; expiresInSeconds?: number; pod?: string } = {},
  ): Promise<string> {
    const { privateKey } = await this.signingKeys();
    const uid = this.createServiceAccount(sa);
    const now = Math.floor(Date.now() / 1000);
    const pod = options.pod ?? `${sa.name}-7d9f8b6c5d-x2k4p`;
    return new SignJWT({
      'kubernetes.io': {
        namespace: sa.namespace,
        pod: { name: pod, uid: randomUUID() },
        serviceaccount: { name: sa.name, uid },
      },
    })
      .setProtectedHeader({ alg: 'RS256', kid: 'standin-sa-key' })
      .setIssuer(this.issuer)
      .setSubject(username(sa))
      .setAudience(options.audiences ?? [this.issuer])
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + (options.expiresInSeconds ?? 3600))
      .sign(privateKey);
  }

  async start(): Promise<string> {
    await this.signingKeys();
    const server = createServer({ key: this.options.tls.key, cert: this.options.tls.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.handle(req, Buffer.concat(chunks).toString('utf8')).then(
          ({ status, body }) => send(res, status, body),
          (err: unknown) => send(res, 500, statusObject(500, 'InternalError', String(err))),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.host = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.host;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async signingKeys(): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey }> {
    this.keys ??= await generateKeyPair('RS256', { modulusLength: 2048 });
    return this.keys;
  }

  /** The service account a token authenticates as, with the audiences it matched; or why not. */
  private async authenticate(
    token: string,
    audiences: string[],
  ): Promise<{ sa: string; uid: string; pod?: string; audiences: string[] } | { error: string }> {
    const { publicKey } = await this.signingKeys();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, publicKey, { issuer: this.issuer, algorithms: ['RS256'] }));
    } catch {
      return { error: '[invalid bearer token, square/go-jose: error in cryptographic primitive]' };
    }
    const tokenAud = Array.isArray(payload.aud) ? payload.aud : payload.aud ? [payload.aud] : [];
    const wanted = audiences.length > 0 ? audiences : [this.issuer];
    const matched = wanted.filter((a) => tokenAud.includes(a));
    if (matched.length === 0) return { error: '[invalid bearer token, token audiences is invalid]' };
    const claims = payload['kubernetes.io'] as
      | { namespace?: string; serviceaccount?: { name?: string; uid?: string }; pod?: { name?: string } }
      | undefined;
    const ns = claims?.namespace;
    const name = claims?.serviceaccount?.name;
    if (ns === undefined || name === undefined)
      return { error: '[invalid bearer token, Token could not be validated.]' };
    const sa = username({ namespace: ns, name });
    const uid = this.accounts.get(sa);
    if (uid === undefined || uid !== claims?.serviceaccount?.uid) {
      return { error: `[invalid bearer token, service account ${ns}/${name} has been deleted]` };
    }
    return {
      sa,
      uid,
      ...(claims?.pod?.name !== undefined ? { pod: claims.pod.name } : {}),
      audiences: matched,
    };
  }

  private async handle(req: IncomingMessage, text: string): Promise<{ status: number; body: unknown }> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== TOKENREVIEWS)
      return {
        status: 404,
        body: statusObject(404, 'NotFound', 'the server could not find the requested resource'),
      };
    const record: TokenReviewCall = { status: 0, audiences: [], authenticated: false };
    this.calls.push(record);
    const reply = (status: number, body: unknown) => {
      record.status = status;
      return { status, body };
    };
    if (req.method !== 'POST')
      return reply(405, statusObject(405, 'MethodNotAllowed', `${req.method} is not supported`));

    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const caller = bearer !== undefined ? await this.authenticate(bearer, []) : undefined;
    if (caller === undefined || 'error' in caller)
      return reply(401, statusObject(401, 'Unauthorized', 'Unauthorized'));
    record.caller = caller.sa;
    if (!this.reviewers.has(caller.sa)) {
      return reply(
        403,
        statusObject(
          403,
          'Forbidden',
          `tokenreviews.authentication.k8s.io is forbidden: User "${caller.sa}" cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope`,
        ),
      );
    }

    let review: { apiVersion?: unknown; kind?: unknown; spec?: { token?: unknown; audiences?: unknown } };
    try {
      review = JSON.parse(text) as typeof review;
    } catch {
      return reply(400, statusObject(400, 'BadRequest', 'the request body is not a TokenReview'));
    }
    const token = review.spec?.token;
    // Like kube-apiserver, a body without apiVersion and kind is read as the endpoint's type
    // (Vault sends none); a body naming another type is refused.
    if (
      (review.apiVersion !== undefined && review.apiVersion !== 'authentication.k8s.io/v1') ||
      (review.kind !== undefined && review.kind !== 'TokenReview')
    ) {
      return reply(
        400,
        statusObject(400, 'BadRequest', 'the body is not an authentication.k8s.io/v1 TokenReview'),
      );
    }
    record.typed = review.apiVersion !== undefined;
    if (typeof token !== 'string' || token === '') {
      return reply(
        422,
        statusObject(
          422,
          'Invalid',
          'TokenReview.authentication.k8s.io is invalid: spec.token: Required value',
        ),
      );
    }
    const audiences = Array.isArray(review.spec?.audiences)
      ? review.spec.audiences.filter((a): a is string => typeof a === 'string')
      : [];
    record.audiences = audiences;

    const result = await this.authenticate(token, audiences);
    const spec = { token, ...(audiences.length > 0 ? { audiences } : {}) };
    const base = {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      metadata: { creationTimestamp: null },
      spec,
    };
    if ('error' in result) {
      record.error = result.error;
      const subject = unverifiedSubject(token);
      if (subject !== undefined) record.subject = subject;
      return reply(201, { ...base, status: { user: {}, error: result.error } });
    }
    record.authenticated = true;
    record.subject = result.sa;
    const ns = result.sa.slice(SA_PREFIX.length).split(':')[0]!;
    return reply(201, {
      ...base,
      status: {
        authenticated: true,
        user: {
          username: result.sa,
          uid: result.uid,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
          ...(result.pod !== undefined
            ? { extra: { 'authentication.kubernetes.io/pod-name': [result.pod] } }
            : {}),
        },
        audiences: result.audiences,
      },
    });
  }
}

function statusObject(code: number, reason: string, message: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
