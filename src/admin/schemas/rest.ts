/**
 * The Confluent Schema Registry REST subset (docs/schemas.md, REST endpoints) as a handler for the
 * admin's HTTP server: Confluent's paths, JSON shapes and error codes, over SchemaRegistry.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { isPrismError } from '../../errors.js';
import { RegistryError } from './errors.js';
import { GLOBAL_CONFIG } from './store.js';
import { DEFAULT_MODE, SCHEMA_TYPES, type SchemaType } from './modes.js';
import {
  noSubjectMode,
  parseVersionRef,
  type SchemaInput,
  type SchemaRegistry,
  type VersionInfo,
} from './registry.js';
import { parseSubject } from './subject.js';

/** Checks the caller (Authorization header) for an action, on a namespace when one is named; returns the principal. */
export type AuthorizeRegistry = (
  authorization: string | undefined,
  action: 'read' | 'write',
  namespace: string | undefined,
) => Promise<string>;

export interface RegistryHttpOptions {
  registry: SchemaRegistry;
  authorize: AuthorizeRegistry;
  logger: Logger;
}

const ROOTS = new Set(['subjects', 'schemas', 'compatibility', 'config']);
const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';
const MAX_BODY_BYTES = 4 << 20;

/** A request handler that takes the registry's paths and answers true, or leaves others (false). */
export function registryHttpHandler(
  options: RegistryHttpOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://registry');
    const segments = url.pathname.split('/').filter(Boolean);
    if (!ROOTS.has(segments[0] ?? '')) return false;
    const send = (status: number, body: unknown, type = CONTENT_TYPE) => {
      if (res.headersSent) return;
      res.writeHead(status, { 'content-type': type });
      res.end(typeof body === 'string' && type !== CONTENT_TYPE ? body : JSON.stringify(body));
    };
    handle(options, req, url, segments.map(decodeURIComponent))
      .then((reply) => send(reply.status ?? 200, reply.body, reply.type))
      .catch((err: unknown) => {
        const { status, body } = errorReply(err);
        if (status >= 500)
          options.logger.error({ err, path: url.pathname }, 'schema registry request failed');
        send(status, body);
      });
    return true;
  };
}

interface Reply {
  status?: number;
  body: unknown;
  type?: string;
}

async function handle(
  { registry, authorize, logger }: RegistryHttpOptions,
  req: IncomingMessage,
  url: URL,
  path: string[],
): Promise<Reply> {
  const method = req.method ?? 'GET';
  const flag = (name: string) => url.searchParams.get(name) === 'true';
  const auth = req.headers.authorization;
  const read = (subject?: string) =>
    authorize(auth, 'read', subject === undefined ? undefined : namespaceOf(subject));
  const write = (subject?: string) =>
    authorize(auth, 'write', subject === undefined ? undefined : namespaceOf(subject));
  const route = (pattern: string) => matches(path, pattern);

  if (method === 'GET' && route('subjects')) {
    await read();
    return { body: await registry.subjects(flag('deleted')) };
  }
  if (method === 'GET' && route('schemas/types')) {
    await read();
    return { body: [...SCHEMA_TYPES] };
  }
  if (method === 'GET' && route('schemas/ids/*')) {
    await read();
    const schema = await registry.schemaById(schemaId(path[2]));
    return { body: withType({ schema: schema.schema }, schema.schemaType) };
  }
  if (method === 'GET' && route('schemas/ids/*/schema')) {
    await read();
    return { body: (await registry.schemaById(schemaId(path[2]))).schema, type: 'text/plain; charset=utf-8' };
  }
  if (method === 'GET' && route('schemas/ids/*/versions')) {
    await read();
    return { body: await registry.usesOf(schemaId(path[2])) };
  }
  if (route('subjects/*')) {
    const subject = path[1] as string;
    if (method === 'POST') {
      await read(subject);
      return { body: versionBody(await registry.lookup(subject, await jsonBody(req))) };
    }
    if (method === 'DELETE') {
      const principal = await write(subject);
      const deleted = await registry.deleteSubject(subject, flag('permanent'), principal);
      logger.info(
        { subject, versions: deleted, permanent: flag('permanent'), principal },
        'schema subject deleted',
      );
      return { body: deleted };
    }
  }
  if (route('subjects/*/versions')) {
    const subject = path[1] as string;
    if (method === 'GET') {
      await read(subject);
      return { body: await registry.versionNumbers(subject, flag('deleted')) };
    }
    if (method === 'POST') {
      const principal = await write(subject);
      const result = await registry.register(subject, await jsonBody(req), principal);
      if (result.created)
        logger.info({ subject, version: result.version, id: result.id, principal }, 'schema registered');
      return { body: { id: result.id } };
    }
  }
  if (route('subjects/*/versions/*')) {
    const subject = path[1] as string;
    const ref = parseVersionRef(path[3] as string);
    if (method === 'GET') {
      await read(subject);
      return { body: versionBody(await registry.version(subject, ref, flag('deleted'))) };
    }
    if (method === 'DELETE') {
      const principal = await write(subject);
      const version = await registry.deleteVersion(subject, ref, flag('permanent'), principal);
      logger.info({ subject, version, permanent: flag('permanent'), principal }, 'schema version deleted');
      return { body: version };
    }
  }
  if (method === 'GET' && route('subjects/*/versions/*/schema')) {
    const subject = path[1] as string;
    await read(subject);
    const version = await registry.version(subject, parseVersionRef(path[3] as string), flag('deleted'));
    return { body: version.schema, type: 'text/plain; charset=utf-8' };
  }
  if (method === 'POST' && route('compatibility/subjects/*/versions/*')) {
    const subject = path[2] as string;
    await read(subject);
    const ref = parseVersionRef(path[4] as string);
    const report = await registry.checkCompatibility(subject, ref, await jsonBody(req));
    return { body: { is_compatible: report.isCompatible, messages: report.messages } };
  }
  if (route('config')) {
    if (method === 'GET') {
      await read();
      return { body: { compatibilityLevel: (await registry.mode(GLOBAL_CONFIG)) ?? DEFAULT_MODE } };
    }
    if (method === 'PUT') {
      const principal = await write();
      const body = await jsonBody(req);
      return {
        body: { compatibility: await registry.setMode(GLOBAL_CONFIG, body.compatibility, principal) },
      };
    }
  }
  if (route('config/*')) {
    const subject = path[1] as string;
    if (method === 'GET') {
      await read(subject);
      const own = await registry.mode(subject);
      if (own) return { body: { compatibilityLevel: own } };
      if (flag('defaultToGlobal'))
        return { body: { compatibilityLevel: await registry.effectiveMode(subject) } };
      throw noSubjectMode(subject);
    }
    if (method === 'PUT') {
      const principal = await write(subject);
      const body = await jsonBody(req);
      const mode = await registry.setMode(subject, body.compatibility, principal);
      logger.info({ subject, compatibility: mode, principal }, 'schema compatibility set');
      return { body: { compatibility: mode } };
    }
    if (method === 'DELETE') {
      const principal = await write(subject);
      return { body: { compatibilityLevel: await registry.deleteMode(subject, principal) } };
    }
  }
  throw new RegistryError(404, `HTTP 404 Not Found: no ${method} ${url.pathname} in the schema registry`);
}

/** `pattern`'s segments, `*` standing for any one segment. */
function matches(path: string[], pattern: string): boolean {
  const parts = pattern.split('/');
  return parts.length === path.length && parts.every((part, i) => part === '*' || part === path[i]);
}

function namespaceOf(subject: string): string {
  return parseSubject(subject).namespace;
}

function schemaId(value: string | undefined): number {
  const id = Number(value);
  if (!/^[0-9]+$/.test(value ?? '') || !Number.isSafeInteger(id))
    throw new RegistryError(40403, `Schema ${value} not found`);
  return id;
}

function withType<T extends object>(body: T, type: SchemaType): T & { schemaType?: SchemaType } {
  return type === 'AVRO' ? body : { ...body, schemaType: type };
}

function versionBody(v: VersionInfo) {
  return withType({ subject: v.subject, version: v.version, id: v.id, schema: v.schema }, v.schemaType);
}

async function jsonBody(req: IncomingMessage): Promise<SchemaInput & { compatibility?: unknown }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new RegistryError(413, `the request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new RegistryError(400, `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new RegistryError(400, 'the request body must be a JSON object');
  return body as SchemaInput;
}

function errorReply(err: unknown): { status: number; body: { error_code: number; message: string } } {
  if (err instanceof RegistryError)
    return { status: err.httpStatus, body: { error_code: err.errorCode, message: err.message } };
  if (isPrismError(err) && err.code === 'E_UNAUTHENTICATED')
    return { status: 401, body: { error_code: 40101, message: err.message } };
  if (isPrismError(err) && err.code === 'E_PERMISSION_DENIED')
    return { status: 403, body: { error_code: 40301, message: err.message } };
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, body: { error_code: 50001, message: `Internal error: ${message}` } };
}
