/**
 * Requests to a plain-HTTP S3 endpoint through `node:http` on kept-alive connections, signed with
 * the SDK's own SigV4 signer: the s3 driver's puts whose length is known before the body is sent
 * (a whole body, or a stream of announced size), and its HeadObject and DeleteObject.
 *
 * Why not the SDK's PutObjectCommand: its middleware stack costs more than the request itself at
 * the sizes a claim check stores. Measured in one Node process putting 1 MiB to SeaweedFS on
 * loopback (medians of 35): the SDK with a streamed body 13.2–14.1 ms and 2.5–3.7 ms of CPU a
 * put; `node:http` on a kept-alive connection 11.2–13.1 ms and 1.0–1.4 ms.
 *
 * The body goes as UNSIGNED-PAYLOAD, as the SDK's streamed puts do: the driver's own SHA-256 is
 * the integrity check (a streamed body's last chunk is held back until it matches), and a signed
 * payload hash would have the store hash every byte once more (0.3–0.8 ms per MiB on SeaweedFS).
 * The headers, metadata included, are signed.
 *
 * A HeadObject and DeleteObject (what a claim's acknowledgement costs) took 4.1–4.7 ms and 3.0–3.4
 * ms of CPU through the SDK, 2.4–2.9 ms and 1.1–1.3 ms this way. Their answers are handed back as
 * they are: the driver asks the SDK again for anything but the plain ones, so the SDK stays the one
 * place that reads S3's errors for them.
 */
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import { finished } from 'node:stream/promises';
import type { SignatureV4 } from '@smithy/signature-v4';

/** The SHA-256 of an empty body, which a HEAD or DELETE signs. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** An error answer's body beyond this is not read (S3's XML errors are a few hundred bytes). */
const ERROR_BODY_LIMIT = 16 * 1024;
/** A connection left idle this long is closed by this side, before a server's own idle timeout. */
const IDLE_CONNECTION_MS = 4_000;

/** Where a direct request goes, and how. */
export interface DirectTarget {
  /** `http://host:port`, the store's endpoint. */
  endpoint: URL;
  /** The path with the bucket, each segment already URI-encoded: `/<bucket>/<key>`. */
  path: string;
  signer: SignatureV4;
  /** Kept-alive connections (directAgent). */
  agent: Agent;
  connectTimeoutMs: number;
  /** The longest the connection may stay silent once connected. */
  idleTimeoutMs: number;
}

export interface DirectPutRequest extends DirectTarget {
  /** Further headers to sign and send (content-type, `x-amz-meta-*`), names in lower case. */
  headers: Readonly<Record<string, string>>;
  /** The body's length in bytes: what is sent as Content-Length. */
  size: number;
  /** The whole body, or its chunks as they arrive (a failing iteration aborts the request). */
  body: Uint8Array | AsyncIterable<Uint8Array>;
}

/** The store answered, and not with 200: its status and S3's error code (e.g. `AccessDenied`). */
export class S3Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(`${code} (HTTP ${status})`);
    this.name = code;
  }
}

/** The agent a store's direct requests share: kept-alive connections, closed after a few idle seconds. */
export function directAgent(): Agent {
  return new Agent({ keepAlive: true, timeout: IDLE_CONNECTION_MS, scheduling: 'lifo' });
}

/**
 * Signs and sends the PUT; resolves when the store answered 200. Rejects with S3Refusal when it
 * answered anything else, with the body's own error when its iteration failed (the request is
 * aborted, so the store keeps nothing), and with the network's error otherwise.
 */
export async function directPut(put: DirectPutRequest): Promise<void> {
  const req = await signedRequest(
    { ...put, method: 'PUT' },
    { ...put.headers, 'content-length': String(put.size), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
  );
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  let bodyFailure: { err: unknown } | undefined;
  const sent = sendBody(req, put.body).catch((err: unknown) => {
    bodyFailure = { err };
    req.destroy(err as Error);
  });
  try {
    const res = await answered;
    if (res.statusCode === 200) {
      // Read to its end, so the connection is free for the next put.
      await finished(res.resume());
      return;
    }
    throw new S3Refusal(res.statusCode ?? 0, errorCode(await errorBody(res)));
  } catch (err) {
    if (bodyFailure !== undefined) throw bodyFailure.err;
    // The rest of a streamed body is not sent: its source ends when its caller gives up on it.
    req.destroy();
    void sent;
    throw err;
  }
}

/**
 * A signed request, not yet ended, on a kept-alive connection: a new connection has
 * `connectTimeoutMs` to connect, and the request may be silent for `idleTimeoutMs` after that.
 */
async function signedRequest(
  target: DirectTarget & { method: string },
  headers: Record<string, string>,
): Promise<ClientRequest> {
  const { endpoint } = target;
  const port = Number(endpoint.port || 80);
  const signed = await target.signer.sign({
    method: target.method,
    protocol: 'http:',
    hostname: endpoint.hostname,
    port,
    path: target.path,
    query: {},
    headers: { ...headers, host: endpoint.host },
  });
  const req = request({
    // URL keeps an IPv6 literal's brackets in `hostname`; a socket wants the bare address.
    host: endpoint.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    method: target.method,
    path: target.path,
    headers: signed.headers,
    agent: target.agent,
  });
  req.once('socket', (socket) => {
    socket.setNoDelay(true);
    if (!socket.connecting) return;
    socket.setTimeout(target.connectTimeoutMs);
    socket.once('connect', () => socket.setTimeout(target.idleTimeoutMs));
  });
  req.setTimeout(target.idleTimeoutMs, () =>
    req.destroy(
      new Error(
        req.socket?.connecting === true
          ? `no answer from ${endpoint.host} within ${target.connectTimeoutMs} ms`
          : `${endpoint.host} was silent for ${target.idleTimeoutMs} ms`,
      ),
    ),
  );
  return req;
}

/** Writes the body, waiting for the socket to drain between chunks; ends the request. */
async function sendBody(req: ClientRequest, body: DirectPutRequest['body']): Promise<void> {
  if (body instanceof Uint8Array) {
    req.end(body);
    return;
  }
  for await (const chunk of body) {
    if (req.destroyed) return;
    if (!req.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          req.off('drain', done);
          req.off('close', done);
          resolve();
        };
        req.on('drain', done);
        req.on('close', done);
      });
    }
  }
  req.end();
}

async function errorBody(res: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of res) {
    text += (chunk as Buffer).toString('utf8');
    if (text.length > ERROR_BODY_LIMIT) {
      res.destroy();
      break;
    }
  }
  return text;
}

/** S3's `<Code>` from an XML error body; `UnknownError` when there is none. */
function errorCode(body: string): string {
  return /<Code>([A-Za-z0-9.]{1,64})<\/Code>/.exec(body)?.[1] ?? 'UnknownError';
}

export interface DirectCallRequest extends DirectTarget {
  method: 'HEAD' | 'DELETE';
}

/** An answer's status and headers (names in lower case); its body, if any, is read and dropped. */
export interface DirectAnswer {
  status: number;
  headers: IncomingMessage['headers'];
}

/** Signs and sends a HEAD or DELETE; resolves with the answer, rejects when there is none. */
export async function directCall(call: DirectCallRequest): Promise<DirectAnswer> {
  const req = await signedRequest(call, { 'x-amz-content-sha256': EMPTY_SHA256 });
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  req.end();
  const res = await answered;
  await finished(res.resume());
  return { status: res.statusCode ?? 0, headers: res.headers };
}
