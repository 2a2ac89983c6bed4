/**
 * What the `mailbox` commands share: the filter flags (turned into a prism.data.v1.MailboxFilter),
 * the client, and one JSON shape for a stored message.
 */
import { toJson, type MessageInitShape } from '@bufbuild/protobuf';
import { Flags } from '@oclif/core';
import { bearerTokenFor } from '../auth/bearer.js';
import type { MailboxClient } from '../client/mailbox-client.js';
import { parseDuration } from '../config/units.js';
import { UsageError } from '../errors.js';
import {
  MailboxMessageSchema,
  type MailboxFilterSchema,
  type MailboxMessage,
} from '../gen/prism/data/v1/mailbox_pb.js';
import { dialTarget, refuseClearTextToken } from '../transport/dial.js';
import { withDevStackTls } from './dev-stack-tls.js';
import type { DataFlagValues } from './data-flags.js';
import { clientTlsFromFlags } from './tls-flags.js';
import { parseHeaders } from './values.js';

export const filterFlags = {
  since: Flags.string({
    description: 'Published at or after: a duration ago (1h, 7d) or an ISO 8601 time',
    helpGroup: 'FILTER',
  }),
  until: Flags.string({
    description: 'Published before: a duration ago (30m) or an ISO 8601 time',
    helpGroup: 'FILTER',
  }),
  header: Flags.string({
    char: 'H',
    description: 'Indexed header equals value: key=value (repeatable; all must match)',
    multiple: true,
    helpGroup: 'FILTER',
  }),
  subject: Flags.string({ description: "Publisher's session subject", helpGroup: 'FILTER' }),
  tenant: Flags.string({ description: "Publisher's session tenant", helpGroup: 'FILTER' }),
  topic: Flags.string({ description: 'Topic the message arrived on', helpGroup: 'FILTER' }),
  'message-id': Flags.string({ description: 'Message id', helpGroup: 'FILTER' }),
  'correlation-id': Flags.string({ description: 'Correlation id', helpGroup: 'FILTER' }),
};

export interface FilterFlagValues {
  since?: string | undefined;
  until?: string | undefined;
  header?: string[] | undefined;
  subject?: string | undefined;
  tenant?: string | undefined;
  topic?: string | undefined;
  'message-id'?: string | undefined;
  'correlation-id'?: string | undefined;
}

/** Epoch milliseconds of `--since`/`--until`: a duration before `now`, or an ISO 8601 time. */
export function pointInTime(text: string, flag: string, now: number): number {
  const ago = parseDuration(text);
  if (ago !== undefined && Number.isFinite(ago)) return now - ago;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const ms = Date.parse(text);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new UsageError(
    `--${flag} '${text}' is neither a duration nor a time`,
    'for example 1h, 7d or 2026-12-01T08:00:00Z',
  );
}

export function filterFromFlags(
  flags: FilterFlagValues,
  now = Date.now(),
): MessageInitShape<typeof MailboxFilterSchema> {
  return {
    sinceMs: flags.since ? BigInt(pointInTime(flags.since, 'since', now)) : 0n,
    untilMs: flags.until ? BigInt(pointInTime(flags.until, 'until', now)) : 0n,
    headers: parseHeaders(flags.header ?? []),
    subject: flags.subject ?? '',
    tenant: flags.tenant ?? '',
    topic: flags.topic ?? '',
    messageId: flags['message-id'] ?? '',
    correlationId: flags['correlation-id'] ?? '',
  };
}

/** A Mailbox client; a token bound for plaintext off this machine is refused before dialling. */
export async function mailboxClient(flags: DataFlagValues): Promise<MailboxClient> {
  const tls = withDevStackTls(flags.proxy, clientTlsFromFlags(flags));
  const target = dialTarget(flags.proxy, tls);
  const token = await bearerTokenFor(flags.token);
  refuseClearTextToken(target, token !== undefined, flags.insecure);
  const { MailboxClient } = await import('../client/mailbox-client.js');
  return new MailboxClient(flags.proxy, { namespace: flags.namespace, pattern: flags.pattern, token, tls });
}

/** A stored message as JSON (protobuf JSON: bytes in base64, 64-bit numbers as strings). */
export function messageJson(message: MailboxMessage): Record<string, unknown> {
  return toJson(MailboxMessageSchema, message) as Record<string, unknown>;
}

/** One line per message for people: time, id, topic, subject, tenant, payload size. */
export function messageLine(message: MailboxMessage): string {
  const e = message.envelope;
  const time = e && e.publishedAtMs > 0n ? new Date(Number(e.publishedAtMs)).toISOString() : '-';
  const size = `${message.payloadSize}B${message.payloadOmitted ? ' (omitted)' : ''}`;
  return [
    time,
    e?.messageId ?? '',
    e?.topic ?? '',
    e?.session?.subject || '-',
    e?.session?.tenant || '-',
    size,
  ].join('  ');
}
