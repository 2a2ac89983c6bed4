/**
 * The one codec between the message envelope (prism.data.v1.Envelope) and a driver Message
 * (DESIGN.md §6). The payload travels unchanged as the backend's message body; envelope fields
 * travel in the backend's native headers under `prism-*` keys, the W3C trace context under its
 * standard `traceparent` / `tracestate` keys, and the publisher's custom headers as given. A plain
 * Kafka or NATS consumer therefore reads the payload as published, and a message from a plain
 * producer (no prism headers) still decodes to an envelope carrying its payload and headers.
 */
import { create } from '@bufbuild/protobuf';
import {
  EnvelopeSchema,
  SessionContextSchema,
  TraceContextSchema,
  type Envelope,
} from '../gen/prism/data/v1/envelope_pb.js';
import type { Message } from '../drivers/interfaces.js';
import { PrismError } from '../errors.js';

/** Header keys of the envelope fields. */
export const HEADER = {
  messageId: 'prism-message-id',
  namespace: 'prism-namespace',
  publishedAtMs: 'prism-published-at-ms',
  contentType: 'prism-content-type',
  correlationId: 'prism-correlation-id',
  sessionSubject: 'prism-session-subject',
  sessionTenant: 'prism-session-tenant',
  sessionRoles: 'prism-session-roles',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  /** Set by the schema stage (src/runners/payload/schema-stage.ts), not by encodeEnvelope's caller. */
  schemaId: 'prism-schema-id',
  schemaVersion: 'prism-schema-version',
} as const;

/** Added to a message moved to the dead-letter slot (consumer runner). */
export const DEAD_LETTER_HEADER = {
  reason: 'prism-dead-letter-reason',
  originalTopic: 'prism-original-topic',
  attempts: 'prism-attempts',
} as const;

/** Prefix reserved for headers the runners write. */
export const RESERVED_PREFIX = 'prism-';

const ENVELOPE_HEADERS: ReadonlySet<string> = new Set(Object.values(HEADER));

/**
 * Header names every backend carries: printable ASCII without spaces or ':' (NATS is the
 * strictest). Lower case is not required, but names are compared case-insensitively when checking
 * the reserved prefix, since some backends fold case.
 */
const HEADER_NAME = /^[!-9;-~]{1,256}$/;
/** CR, LF and NUL end a header line on NATS; no backend keeps them intact. */
const FORBIDDEN_IN_VALUE = /[\r\n\0]/;

function invalid(message: string, hint?: string): PrismError {
  return new PrismError('E_INVALID_ARGUMENT', message, hint === undefined ? undefined : { hint });
}

function checkValue(name: string, value: string): void {
  if (FORBIDDEN_IN_VALUE.test(value)) {
    throw invalid(`header ${JSON.stringify(name)} contains CR, LF or NUL, which no backend carries`);
  }
}

/** Checks the publisher's custom headers: E_INVALID_ARGUMENT for reserved or malformed names. */
export function checkCustomHeaders(headers: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower.startsWith(RESERVED_PREFIX)) {
      throw invalid(
        `custom header ${JSON.stringify(name)} uses the reserved prefix "${RESERVED_PREFIX}"`,
        'prism-* headers carry the envelope; choose another name',
      );
    }
    if (lower === HEADER.traceparent || lower === HEADER.tracestate) {
      throw invalid(
        `custom header ${JSON.stringify(name)} is the W3C trace context`,
        'pass the trace context as `trace`, not as a custom header',
      );
    }
    if (!HEADER_NAME.test(name)) {
      throw invalid(
        `custom header name ${JSON.stringify(name)} is not printable ASCII without spaces and ':'`,
      );
    }
    if (typeof value !== 'string') throw invalid(`custom header ${JSON.stringify(name)} must be a string`);
    checkValue(name, value);
  }
}

/** Roles are joined with ',' and each is percent-encoded, so a role may itself contain ','. */
function encodeRoles(roles: readonly string[]): string {
  return roles.map((role) => encodeURIComponent(role)).join(',');
}

function decodeRoles(text: string): string[] {
  if (text === '') return [];
  return text.split(',').map((role) => {
    try {
      return decodeURIComponent(role);
    } catch {
      return role;
    }
  });
}

/**
 * What encodeEnvelope reads: an Envelope, or the same fields as a plain object (the producer
 * builds one per message, so it skips protobuf-es `create`).
 */
export interface EnvelopeFields {
  messageId: string;
  topic: string;
  namespace: string;
  publishedAtMs: bigint;
  contentType: string;
  correlationId: string;
  session?: { subject: string; tenant: string; roles: readonly string[] } | undefined;
  trace?: { traceparent: string; tracestate: string } | undefined;
  headers: Readonly<Record<string, string>>;
  payload: Uint8Array;
  schemaId: number;
  schemaVersion: number;
}

/**
 * The driver Message for an envelope. Empty fields are left out; custom headers are checked
 * (reserved prefix, names, values). `attempt` is a consumer-side count and does not travel.
 */
export function encodeEnvelope(envelope: EnvelopeFields): Message {
  checkCustomHeaders(envelope.headers);
  const headers: Record<string, string> = { ...envelope.headers };
  const put = (name: string, value: string) => {
    if (value === '') return;
    checkValue(name, value);
    headers[name] = value;
  };
  put(HEADER.messageId, envelope.messageId);
  put(HEADER.namespace, envelope.namespace);
  if (envelope.publishedAtMs !== 0n) put(HEADER.publishedAtMs, envelope.publishedAtMs.toString());
  put(HEADER.contentType, envelope.contentType);
  put(HEADER.correlationId, envelope.correlationId);
  if (envelope.session) {
    put(HEADER.sessionSubject, envelope.session.subject);
    put(HEADER.sessionTenant, envelope.session.tenant);
    put(HEADER.sessionRoles, encodeRoles(envelope.session.roles));
  }
  if (envelope.trace) {
    put(HEADER.traceparent, envelope.trace.traceparent);
    put(HEADER.tracestate, envelope.trace.tracestate);
  }
  if (envelope.schemaId !== 0) put(HEADER.schemaId, String(envelope.schemaId));
  if (envelope.schemaVersion !== 0) put(HEADER.schemaVersion, String(envelope.schemaVersion));
  return { topic: envelope.topic, payload: envelope.payload, headers };
}

/** `message` stamped with the schema registry id and subject version its payload follows. */
export function withSchema(message: Message, id: number, version: number): Message {
  return {
    ...message,
    headers: { ...message.headers, [HEADER.schemaId]: String(id), [HEADER.schemaVersion]: String(version) },
  };
}

/** A positive uint32 header value, else 0 (absent or not a number: a message without a schema). */
function parseUint32(text: string | undefined): number {
  if (text === undefined || !/^[0-9]{1,10}$/.test(text)) return 0;
  const n = Number(text);
  return n <= 0xffffffff ? n : 0;
}

function parseMs(text: string | undefined): bigint {
  if (text === undefined || !/^[0-9]{1,16}$/.test(text)) return 0n;
  return BigInt(text);
}

/**
 * The envelope of a driver Message. Never fails: missing prism headers leave fields empty, so
 * messages from plain producers decode too. Headers that are not envelope fields, including
 * `prism-*` ones the envelope does not define (e.g. the dead-letter reason), stay in `headers`.
 */
export function decodeEnvelope(message: Message, attempt = 1): Envelope {
  const h = message.headers;
  const custom: Record<string, string> = {};
  for (const name in h) {
    if (!ENVELOPE_HEADERS.has(name)) custom[name] = h[name]!;
  }
  const hasSession =
    h[HEADER.sessionSubject] !== undefined ||
    h[HEADER.sessionTenant] !== undefined ||
    h[HEADER.sessionRoles] !== undefined;
  const hasTrace = h[HEADER.traceparent] !== undefined || h[HEADER.tracestate] !== undefined;
  return create(EnvelopeSchema, {
    messageId: h[HEADER.messageId] ?? '',
    topic: message.topic,
    namespace: h[HEADER.namespace] ?? '',
    publishedAtMs: parseMs(h[HEADER.publishedAtMs]),
    contentType: h[HEADER.contentType] ?? '',
    correlationId: h[HEADER.correlationId] ?? '',
    session: hasSession
      ? create(SessionContextSchema, {
          subject: h[HEADER.sessionSubject] ?? '',
          tenant: h[HEADER.sessionTenant] ?? '',
          roles: decodeRoles(h[HEADER.sessionRoles] ?? ''),
        })
      : undefined,
    trace: hasTrace
      ? create(TraceContextSchema, {
          traceparent: h[HEADER.traceparent] ?? '',
          tracestate: h[HEADER.tracestate] ?? '',
        })
      : undefined,
    headers: custom,
    // A view, not a copy: some drivers hand out Buffers, the envelope holds a plain Uint8Array.
    payload: new Uint8Array(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength),
    attempt,
    schemaId: parseUint32(h[HEADER.schemaId]),
    schemaVersion: parseUint32(h[HEADER.schemaVersion]),
  });
}
