/**
 * rate-limited-kv: a pattern built only with prismctl/sdk (docs/sdk.md). It serves the KeyValue
 * API over a keyvalue store slot and allows at most `writes_per_window` writes (Set, Delete,
 * Expire, Persist; a batch counts each item) per `window`; the next write gets RESOURCE_EXHAUSTED.
 * The window's counter lives in the store itself (key `__rate/<window start>`, expiring with the
 * window), so a restarted runner process keeps the quota already used.
 */
import {
  definePattern,
  parseDuration,
  PrismError,
  type KeyValueRunnerApi,
  type KeyValueStore,
  type PatternContext,
  type ScanStore,
  type TtlStore,
} from 'prismctl/sdk';

const COUNTER_PREFIX = '__rate/';
type Store = KeyValueStore & TtlStore & ScanStore;

export function createRateLimitedRunner(context: PatternContext): KeyValueRunnerApi {
  const limit = Number(context.settings.writes_per_window);
  const windowMs = parseDuration(context.settings.window ?? '1m') ?? 60_000;
  const { slots } = context;
  const store = (): Store => slots.driver('store') as unknown as Store;
  let counting: Promise<unknown> = Promise.resolve();

  function checkKey(key: string): void {
    if (key.startsWith(COUNTER_PREFIX))
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `keys starting with ${COUNTER_PREFIX} belong to the rate limiter`,
      );
  }

  /** Takes `n` writes from this window's quota, one caller at a time in this process. */
  function take(n: number): Promise<void> {
    const next = counting.then(async () => {
      const start = Math.floor(Date.now() / windowMs) * windowMs;
      const key = `${COUNTER_PREFIX}${start}`;
      const used = Number(new TextDecoder().decode((await store().get(key)) ?? new Uint8Array())) || 0;
      if (used + n > limit)
        throw new PrismError(
          'E_RESOURCE_EXHAUSTED',
          `${context.namespace}/${context.pattern}: ${limit} writes per ${context.settings.window ?? '1m'} used up`,
          { hint: `retry after ${new Date(start + windowMs).toISOString()}` },
        );
      await store().set(
        key,
        new TextEncoder().encode(String(used + n)),
        start + windowMs - Date.now() + 1_000,
      );
    });
    counting = next.catch(() => undefined);
    return next;
  }

  return {
    namespace: context.namespace,
    pattern: context.pattern,
    type: context.type,
    start: () => slots.start(),
    stop: () => slots.stop(),
    health: () => slots.health(),
    async set(key, value, ttlSeconds) {
      checkKey(key);
      await take(1);
      await store().set(key, value, ttlSeconds ? ttlSeconds * 1000 : undefined);
    },
    async get(key) {
      checkKey(key);
      return store().get(key);
    },
    async delete(key) {
      checkKey(key);
      await take(1);
      return store().delete(key);
    },
    async exists(key) {
      checkKey(key);
      return store().exists(key);
    },
    async batchSet(items) {
      items.forEach((item) => checkKey(item.key));
      await take(items.length);
      for (const item of items)
        await store().set(item.key, item.value, item.ttlSeconds ? item.ttlSeconds * 1000 : undefined);
    },
    async batchGet(keys) {
      keys.forEach(checkKey);
      return Promise.all(keys.map((key) => store().get(key)));
    },
    async batchDelete(keys) {
      keys.forEach(checkKey);
      await take(keys.length);
      const out: boolean[] = [];
      for (const key of keys) out.push(await store().delete(key));
      return out;
    },
    async scan(prefix, limit = 100, cursor) {
      const page = await store().scan(prefix, { limit, ...(cursor ? { cursor } : {}) });
      return { ...page, keys: page.keys.filter((k) => !k.startsWith(COUNTER_PREFIX)) };
    },
    async expire(key, ttlSeconds) {
      checkKey(key);
      await take(1);
      return store().expire(key, ttlSeconds * 1000);
    },
    async ttl(key) {
      checkKey(key);
      return store().ttl(key);
    },
    async persist(key) {
      checkKey(key);
      await take(1);
      return store().persist(key);
    },
  };
}

export default definePattern({
  sdkVersion: 1,
  type: 'rate-limited-kv',
  description: 'Key-value store that allows a fixed number of writes per time window',
  api: 'keyvalue',
  slots: {
    store: {
      required: true,
      needs: [['keyvalue', 'ttl', 'scan']],
      description: 'keys, values and the window counter',
    },
  },
  settings: {
    writes_per_window: {
      description: 'writes allowed per window, e.g. 100',
      required: true,
      pattern: '[1-9][0-9]*',
    },
    window: { description: 'length of a window, e.g. 1m', pattern: '[0-9]+(ms|s|m|h)', default: '1m' },
  },
  createRunner: createRateLimitedRunner,
});
