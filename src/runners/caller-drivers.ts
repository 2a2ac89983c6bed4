/**
 * The drivers of one per-caller slot, one per live BackendSession (DESIGN.md §7, per-request
 * sessions). A caller's driver is opened on its first call with the caller's own credentials,
 * and closed (its credentials released) when the caller's session closes or the runner stops,
 * after the calls running on it finish.
 */
import type { AnyDriver } from '../drivers/interfaces.js';
import type { CallerDriver, SlotSet } from './slots.js';
import type { BackendSession } from './types.js';

interface Entry {
  driver: Promise<CallerDriver>;
  inflight: Set<Promise<unknown>>;
}

export class CallerDrivers {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly slots: SlotSet,
    private readonly slot: string,
  ) {}

  /** Open caller connections (for status and tests). */
  get size(): number {
    return this.entries.size;
  }

  /** Runs `operation` on the caller's own driver, opening it on first use. */
  run<T>(session: BackendSession, operation: (driver: AnyDriver) => Promise<T>): Promise<T> {
    const entry = this.entryFor(session);
    const work = entry.driver.then((opened) => operation(opened.driver));
    entry.inflight.add(work);
    const forget = () => entry.inflight.delete(work);
    work.then(forget, forget);
    return work;
  }

  /** Closes a caller's driver once its calls finish; unknown sessions are ignored. */
  async release(sessionId: string): Promise<void> {
    const entry = this.entries.get(sessionId);
    if (!entry) return;
    this.entries.delete(sessionId);
    while (entry.inflight.size > 0) await Promise.allSettled([...entry.inflight]);
    const opened = await entry.driver.catch(() => undefined);
    await opened?.close();
  }

  /** Closes every caller's driver; tries them all, rethrows the first failure. */
  async closeAll(): Promise<void> {
    const results = await Promise.allSettled([...this.entries.keys()].map((id) => this.release(id)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private entryFor(session: BackendSession): Entry {
    const existing = this.entries.get(session.id);
    if (existing) return existing;
    const entry: Entry = { driver: this.slots.openFor(this.slot, session.credentials), inflight: new Set() };
    this.entries.set(session.id, entry);
    session.onClose(() => this.release(session.id));
    entry.driver.catch(() => {
      if (this.entries.get(session.id) === entry) this.entries.delete(session.id);
    });
    return entry;
  }
}
