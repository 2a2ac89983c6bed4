/**
 * The keyvalue runner: the KeyValue API (calls.ts: the pattern's rules) over the `store` slot.
 */
import { scopeKeys } from '../../drivers/key-scope.js';
import { CallerDrivers } from '../caller-drivers.js';
import { RunnerBase } from '../lifecycle.js';
import type { SettingsReader } from '../settings.js';
import type { SlotSet } from '../slots.js';
import type { BackendSession, KeyValueCallsApi, KeyValueRunnerApi, PerCallerRunner } from '../types.js';
import { KeyValueCalls, type KeyValueSettings, type Store } from './calls.js';

export {
  checkKey,
  DEFAULT_SCAN_LIMIT,
  MAX_KEY_BYTES,
  MAX_SCAN_LIMIT,
  type KeyValueSettings,
} from './calls.js';

export function readKeyValueSettings(reader: SettingsReader): KeyValueSettings {
  const raw = reader.raw;
  const defaultTtlMs = reader.duration('default_ttl', raw?.defaultTtl) ?? 0;
  const maxValueSizeText = reader.string('max_value_size', raw?.maxValueSize) ?? '1MiB';
  const maxValueSizeBytes = reader.size('max_value_size', raw?.maxValueSize) ?? 1024 ** 2;
  return {
    defaultTtlMs: Number.isFinite(defaultTtlMs) ? defaultTtlMs : 0,
    maxValueSizeBytes,
    maxValueSizeText,
  };
}

/** Where a keyvalue pattern's keys live in its store. */
export function keyPrefix(pattern: string): string {
  return `keyvalue/${pattern}/`;
}

/**
 * The keyvalue runner over its `store` slot. When the store connects per caller (per-request
 * sessions), `forCaller` serves a caller's calls over that caller's own connection, opened on
 * first use and closed with the caller's session or when the runner stops.
 */
export class KeyValueRunner
  extends RunnerBase
  implements KeyValueRunnerApi, PerCallerRunner<KeyValueCallsApi>
{
  readonly type = 'keyvalue' as const;
  private readonly calls: KeyValueCalls;
  private readonly callers: CallerDrivers;
  /** The scoped view of each store, built once: a view per call was garbage on the hot path. */
  private readonly views = new WeakMap<Store, Store>();

  constructor(
    namespace: string,
    pattern: string,
    slots: SlotSet,
    readonly settings: KeyValueSettings,
  ) {
    super(namespace, pattern, slots);
    this.calls = new KeyValueCalls(this.label, settings, (operation) =>
      this.track(() => {
        try {
          return operation(this.scoped(this.slots.driver('store') as Store));
        } catch (err) {
          return Promise.reject(err as Error);
        }
      }),
    );
    this.callers = new CallerDrivers(slots, 'store');
  }

  /**
   * Every key of this pattern lives under `keyvalue/<pattern>/` in its store, so two keyvalue
   * patterns of one namespace on one backend never share keys, and none of them sees the keys the
   * other runners keep there (`producer/<pattern>/...`, `consumer/<pattern>/...`,
   * `session/<pattern>/...`).
   */
  private scoped(store: Store): Store {
    let view = this.views.get(store);
    if (view === undefined) {
      view = scopeKeys(store, keyPrefix(this.pattern));
      this.views.set(store, view);
    }
    return view;
  }

  get needsCallerSession(): boolean {
    return this.slots.perCaller('store');
  }

  /** Open caller connections. */
  get callerConnections(): number {
    return this.callers.size;
  }

  async forCaller(session: BackendSession): Promise<KeyValueCallsApi> {
    return new KeyValueCalls(this.label, this.settings, (operation) =>
      this.track(() => this.callers.run(session, (driver) => operation(this.scoped(driver as Store)))),
    );
  }

  override async stop(): Promise<void> {
    await super.stop();
    await this.callers.closeAll();
  }

  // Bound, and with their parameters spelled out: a rest parameter is an array per call.
  set: KeyValueCallsApi['set'] = (key, value, ttlSeconds) => this.calls.set(key, value, ttlSeconds);
  get: KeyValueCallsApi['get'] = (key) => this.calls.get(key);
  delete: KeyValueCallsApi['delete'] = (key) => this.calls.delete(key);
  exists: KeyValueCallsApi['exists'] = (key) => this.calls.exists(key);
  batchSet: KeyValueCallsApi['batchSet'] = (items) => this.calls.batchSet(items);
  batchGet: KeyValueCallsApi['batchGet'] = (keys) => this.calls.batchGet(keys);
  batchDelete: KeyValueCallsApi['batchDelete'] = (keys) => this.calls.batchDelete(keys);
  scan: KeyValueCallsApi['scan'] = (prefix, limit, cursor) => this.calls.scan(prefix, limit, cursor);
  expire: KeyValueCallsApi['expire'] = (key, ttlSeconds) => this.calls.expire(key, ttlSeconds);
  ttl: KeyValueCallsApi['ttl'] = (key) => this.calls.ttl(key);
  persist: KeyValueCallsApi['persist'] = (key) => this.calls.persist(key);
}
