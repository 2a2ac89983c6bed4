/**
 * Watch: the filters of open Watch streams, matched in memory against each record as it is
 * committed. Only newly inserted records are offered (a redelivered duplicate is not), so a
 * watcher sees every matching message once, in the order they were stored.
 */
import type { MailboxFilter, MailboxRecord } from '../../drivers/interfaces.js';

/** True when the record meets every condition of the filter (the store's semantics). */
export function matchesFilter(record: MailboxRecord, filter: MailboxFilter): boolean {
  if (filter.sinceMs !== undefined && record.publishedAtMs < filter.sinceMs) return false;
  if (filter.untilMs !== undefined && record.publishedAtMs >= filter.untilMs) return false;
  if (filter.topic && record.topic !== filter.topic) return false;
  if (filter.messageIds?.length && !filter.messageIds.includes(record.messageId)) return false;
  if (filter.correlationId && record.correlationId !== filter.correlationId) return false;
  if (filter.subject && record.subject !== filter.subject) return false;
  if (filter.tenant && record.tenant !== filter.tenant) return false;
  for (const [name, value] of Object.entries(filter.headers ?? {})) {
    if (record.headers[name] !== value) return false;
  }
  return true;
}

export interface Watcher<M> {
  filter: MailboxFilter;
  /** A matching message. */
  send(message: M): void;
  /** The runner stops: the stream ends. */
  end(): void;
}

export class Watchers<M> {
  private readonly open = new Set<Watcher<M>>();

  add(watcher: Watcher<M>): () => void {
    this.open.add(watcher);
    return () => {
      this.open.delete(watcher);
    };
  }

  get size(): number {
    return this.open.size;
  }

  /** Offers a committed record; `toMessage` runs once, and only when some watcher matches. */
  offer(record: MailboxRecord, toMessage: () => M): void {
    let message: M | undefined;
    for (const watcher of this.open) {
      if (!matchesFilter(record, watcher.filter)) continue;
      message ??= toMessage();
      watcher.send(message);
    }
  }

  endAll(): void {
    const all = [...this.open];
    this.open.clear();
    for (const watcher of all) watcher.end();
  }
}
