/**
 * AWS IAM service identity for Vault's aws auth method (iam type): a SigV4-signed
 * `sts:GetCallerIdentity` request that this process does not send itself. Vault sends it to STS
 * and learns who signed it. The request travels in the login body as
 * iam_http_request_method, iam_request_url, iam_request_body and iam_request_headers (the last
 * three base64; the headers as JSON, Go style: name → [values]).
 *
 * Signature Version 4 is a handful of HMAC-SHA256 steps, signed here with node:crypto instead of
 * pulling in the AWS SDK for one fixed request. Credentials come from the standard variables
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. Nothing here logs; the
 * secret key never leaves this module, and the signature only leaves it inside the login body.
 */
import { createHash, createHmac } from 'node:crypto';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The request body of GetCallerIdentity, as Vault expects it. */
export const GET_CALLER_IDENTITY_BODY = 'Action=GetCallerIdentity&Version=2011-06-15';

/** The header Vault checks against its iam_server_id_header_value, when one is configured. */
export const VAULT_SERVER_ID_HEADER = 'X-Vault-AWS-IAM-Server-ID';

/** AWS credentials from the standard environment variables; undefined without both keys. */
export function awsCredentialsFromEnv(env: NodeJS.ProcessEnv = process.env): AwsCredentials | undefined {
  const accessKeyId = env.AWS_ACCESS_KEY_ID?.trim();
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY?.trim();
  if (!accessKeyId || !secretAccessKey) return undefined;
  const sessionToken = env.AWS_SESSION_TOKEN?.trim();
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

export interface SignableRequest {
  method: string;
  url: URL;
  /** Headers to sign besides host, x-amz-date and x-amz-security-token. */
  headers: Record<string, string>;
  body: string;
}

export interface SigningScope {
  region: string;
  service: string;
  now: Date;
}

/**
 * Signs a request with SigV4 (header form). Returns the headers to send: the given ones plus
 * X-Amz-Date, X-Amz-Security-Token (with a session token) and Authorization. Host is signed
 * from the URL but not returned (HTTP clients set it from the URL).
 */
export function signV4(
  request: SignableRequest,
  credentials: AwsCredentials,
  scope: SigningScope,
): Record<string, string> {
  const amzDate = scope.now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = { ...request.headers, 'X-Amz-Date': amzDate };
  if (credentials.sessionToken) headers['X-Amz-Security-Token'] = credentials.sessionToken;

  const canonical = new Map<string, string>([['host', request.url.host]]);
  for (const [name, value] of Object.entries(headers))
    canonical.set(name.toLowerCase(), value.trim().replace(/\s+/g, ' '));
  const names = [...canonical.keys()].sort();
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    request.method.toUpperCase(),
    request.url.pathname || '/',
    canonicalQuery(request.url.searchParams),
    names.map((n) => `${n}:${canonical.get(n)!}\n`).join(''),
    signedHeaders,
    sha256Hex(request.body),
  ].join('\n');
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, credentialScope, sha256Hex(canonicalRequest)].join('\n');
  let key: Buffer = hmac(`AWS4${credentials.secretAccessKey}`, day);
  for (const part of [scope.region, scope.service, 'aws4_request']) key = hmac(key, part);
  const signature = hmac(key, stringToSign).toString('hex');
  headers.Authorization =
    `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${credentialScope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}

export interface AwsIamLoginOptions {
  /** Signs for the regional STS endpoint (sts.<region>.amazonaws.com); default the global one. */
  region?: string;
  /** Value of X-Vault-AWS-IAM-Server-ID, when Vault's aws auth is configured to require one. */
  serverId?: string;
  now?: Date;
}

/** The iam_* fields of a Vault `auth/aws/login` body (add `role`). */
export interface AwsIamLoginFields {
  iam_http_request_method: 'POST';
  iam_request_url: string;
  iam_request_body: string;
  iam_request_headers: string;
}

/** A freshly signed GetCallerIdentity request in the shape Vault's aws auth login expects. */
export function awsIamLoginFields(
  credentials: AwsCredentials,
  options: AwsIamLoginOptions = {},
): AwsIamLoginFields {
  const region = options.region || undefined;
  const url = new URL(region ? `https://sts.${region}.amazonaws.com/` : 'https://sts.amazonaws.com/');
  const unsigned: Record<string, string> = {
    'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8',
  };
  if (options.serverId) unsigned[VAULT_SERVER_ID_HEADER] = options.serverId;
  const headers = signV4(
    { method: 'POST', url, headers: unsigned, body: GET_CALLER_IDENTITY_BODY },
    credentials,
    { region: region ?? 'us-east-1', service: 'sts', now: options.now ?? new Date() },
  );
  const goStyle = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
  return {
    iam_http_request_method: 'POST',
    iam_request_url: base64(url.toString()),
    iam_request_body: base64(GET_CALLER_IDENTITY_BODY),
    iam_request_headers: base64(JSON.stringify(goStyle)),
  };
}

function canonicalQuery(params: URLSearchParams): string {
  return [...params]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak === bk ? compare(av, bv) : compare(ak, bk)))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** RFC 3986 encoding as SigV4 wants it: everything but unreserved characters, upper-case hex. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sha256Hex(data: string): string {
  return createHash('sha256').update(data, 'utf8').digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
