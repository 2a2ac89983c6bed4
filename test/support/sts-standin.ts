/**
 * An AWS STS STAND-IN for tests (DESIGN.md §9): AWS is not reachable from here, so this small HTTP
 * server on 127.0.0.1 answers the one STS call that Vault's aws auth method (iam type) makes,
 * `GetCallerIdentity`. Vault's method sends the login's signed request to its `sts_endpoint`
 * (`auth/<mount>/config/client`) unchanged: method, body, headers, and the Host it was signed for
 * (`sts.amazonaws.com` or `sts.<region>.amazonaws.com`), at `<endpoint>/` + the signed path. OpenBao
 * 2.7.2 has no aws method built in, so in these tests aws-auth-standin.ts does that forwarding in
 * front of the real OpenBao.
 *
 * Like STS, the server checks the Signature Version 4 signature with the secret key of the access
 * key id that signed (recomputed here, independently of src/auth/aws-iam.ts): the credential scope
 * (region from the Host, service `sts`), that Host and X-Amz-Date are signed, a date within 15
 * minutes, and the signature itself. It answers STS's XML, GetCallerIdentityResponse with the
 * identity's Arn, UserId and Account, or an ErrorResponse with 403. Every call is recorded.
 *
 *   const sts = new StsStandin({ AKIDEXAMPLE: { secretAccessKey, arn: 'arn:aws:iam::123456789012:role/x' } });
 *   const aws = new AwsAuthStandin({ vault, stsEndpoint: await sts.start(), roles: { ... } });
 */
import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StsIdentity {
  secretAccessKey: string;
  /** What GetCallerIdentity answers, e.g. arn:aws:sts::123456789012:assumed-role/prism-proxy/e2e. */
  arn: string;
  /** Default: the ARN's account field. */
  account?: string;
  /** Default: a stable id made from the access key id. */
  userId?: string;
}

export interface StsCall {
  /** The Host the request was signed for (as forwarded by Vault). */
  host: string;
  accessKeyId?: string;
  status: number;
  /** STS's error code when refused (InvalidClientTokenId, SignatureDoesNotMatch, ...). */
  error?: string;
}

const GET_CALLER_IDENTITY = 'Action=GetCallerIdentity&Version=2011-06-15';
const MAX_SKEW_MS = 15 * 60_000;
const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

class StsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly accessKeyId?: string,
  ) {
    super(message);
  }
}

const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

function xmlEscape(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export class StsStandin {
  private server?: Server;
  /** http://127.0.0.1:<port>, once started: the value for Vault's `sts_endpoint`. */
  endpoint = '';
  readonly calls: StsCall[] = [];
  /** Signatures of accepted requests (tests look for them in logs). */
  readonly signatures: string[] = [];

  constructor(private readonly identities: Record<string, StsIdentity>) {}

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const host = req.headers.host ?? '';
        let status = 200;
        let body: string;
        try {
          const { accessKeyId, identity } = this.verify(req, Buffer.concat(chunks).toString('utf8'));
          this.calls.push({ host, accessKeyId, status });
          body = this.identityXml(accessKeyId, identity);
        } catch (err) {
          const e = err instanceof StsError ? err : new StsError('InternalFailure', (err as Error).message);
          status = e.code === 'InternalFailure' ? 500 : 403;
          this.calls.push({
            host,
            status,
            error: e.code,
            ...(e.accessKeyId !== undefined ? { accessKeyId: e.accessKeyId } : {}),
          });
          body = [
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">',
            `<Error><Type>Sender</Type><Code>${e.code}</Code><Message>${xmlEscape(e.message)}</Message></Error>`,
            `<RequestId>${randomUUID()}</RequestId>`,
            '</ErrorResponse>',
          ].join('');
        }
        res.writeHead(status, { 'content-type': 'text/xml' });
        res.end(body);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    this.server = server;
    this.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.endpoint;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Checks the request as STS would; answers who signed it. */
  private verify(req: IncomingMessage, body: string): { accessKeyId: string; identity: StsIdentity } {
    if (req.method !== 'POST') throw new StsError('InvalidAction', 'only POST is served here');
    if (body !== GET_CALLER_IDENTITY) {
      throw new StsError('InvalidAction', 'this stand-in serves only GetCallerIdentity');
    }
    const host = req.headers.host ?? '';
    const regional = /^sts\.([a-z0-9-]+)\.amazonaws\.com$/.exec(host);
    if (!regional && host !== 'sts.amazonaws.com') {
      throw new StsError('InvalidAction', `the request was signed for ${host}, not an STS endpoint`);
    }
    const auth = AUTHORIZATION.exec(req.headers.authorization ?? '');
    if (!auth) throw new StsError('MissingAuthenticationToken', 'no SigV4 Authorization header');
    const [, accessKeyId, day, region, service, signedHeaders, signature] = auth as unknown as string[];
    const identity = this.identities[accessKeyId!];
    if (!identity) {
      throw new StsError(
        'InvalidClientTokenId',
        'The security token included in the request is invalid.',
        accessKeyId,
      );
    }
    const refuse = (message: string) => new StsError('SignatureDoesNotMatch', message, accessKeyId);
    if (service !== 'sts') throw refuse(`credential scope names service ${service}, not sts`);
    if (region !== (regional?.[1] ?? 'us-east-1')) throw refuse(`credential scope names region ${region}`);
    const names = signedHeaders!.split(';');
    if (!names.includes('host') || !names.includes('x-amz-date')) {
      throw refuse('Host and X-Amz-Date must be signed');
    }
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const signedAt = Date.parse(
      amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
    );
    if (!amzDate.startsWith(day!) || !(Math.abs(Date.now() - signedAt) < MAX_SKEW_MS)) {
      throw refuse('Signature expired or X-Amz-Date missing');
    }
    const value = (name: string) => {
      const raw = req.headers[name];
      return (Array.isArray(raw) ? raw.join(',') : (raw ?? '')).trim().replace(/\s+/g, ' ');
    };
    // Vault joins its endpoint and the signed path ("/") with a "/", so the path arrives as "//".
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/{2,}/g, '/');
    const canonical = [
      'POST',
      path,
      '',
      names.map((n) => `${n}:${value(n)}\n`).join(''),
      signedHeaders,
      sha256(body),
    ].join('\n');
    const scope = `${day}/${region}/sts/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
    let key = hmac(`AWS4${identity.secretAccessKey}`, day!);
    for (const part of [region!, 'sts', 'aws4_request']) key = hmac(key, part);
    if (!timingSafeEqual(hmac(key, toSign), Buffer.from(signature!, 'hex'))) {
      throw refuse('The request signature we calculated does not match the signature you provided.');
    }
    this.signatures.push(signature!);
    return { accessKeyId: accessKeyId!, identity };
  }

  private identityXml(accessKeyId: string, identity: StsIdentity): string {
    const account = identity.account ?? identity.arn.split(':')[4] ?? '';
    const userId = identity.userId ?? `AIDA${sha256(accessKeyId).slice(0, 17).toUpperCase()}`;
    return [
      '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">',
      '<GetCallerIdentityResult>',
      `<Arn>${xmlEscape(identity.arn)}</Arn><UserId>${xmlEscape(userId)}</UserId><Account>${account}</Account>`,
      '</GetCallerIdentityResult>',
      `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>`,
      '</GetCallerIdentityResponse>',
    ].join('');
  }
}
