/**
 * {{type}}: a Prism pattern built with prismctl/sdk. It serves the KeyValue API over a keyvalue
 * store slot, adding `key_prefix` to every key; change the runner below to make it your own.
 * Load it with `--pattern-module {{name}}` (docs/sdk.md in prismctl).
 */
import {
  definePattern,
  PrismError,
  type KeyValueRunnerApi,
  type KeyValueStore,
  type PatternContext,
  type ScanStore,
  type TtlStore,
} from 'prismctl/sdk';

type Store = KeyValueStore & TtlStore & ScanStore;

export function createRunner(context: PatternContext): KeyValueRunnerApi {
  const prefix = context.settings.key_prefix ?? '';
  const { slots } = context;
  const store = (): Store => slots.driver('store') as unknown as Store;
  const k = (key: string): string => {
    if (key === '') throw new PrismError('E_INVALID_ARGUMENT', 'a key may not be empty');
    return prefix + key;
  };
  const ms = (seconds?: number) => (seconds ? seconds * 1000 : undefined);
  return {
    namespace: context.namespace,
    pattern: context.pattern,
    type: context.type,
    start: () => slots.start(),
    stop: () => slots.stop(),
    health: () => slots.health(),
    set: async (key, value, ttlSeconds) => store().set(k(key), value, ms(ttlSeconds)),
    get: async (key) => store().get(k(key)),
    delete: async (key) => store().delete(k(key)),
    exists: async (key) => store().exists(k(key)),
    batchSet: async (items) => {
      for (const item of items) await store().set(k(item.key), item.value, ms(item.ttlSeconds));
    },
    batchGet: async (keys) => Promise.all(keys.map((key) => store().get(k(key)))),
    batchDelete: async (keys) => Promise.all(keys.map((key) => store().delete(k(key)))),
    scan: async (scanPrefix, limit = 100, cursor) => {
      const page = await store().scan(prefix + scanPrefix, { limit, ...(cursor ? { cursor } : {}) });
      return { ...page, keys: page.keys.map((key) => key.slice(prefix.length)) };
    },
    expire: async (key, ttlSeconds) => store().expire(k(key), ttlSeconds * 1000),
    ttl: async (key) => store().ttl(k(key)),
    persist: async (key) => store().persist(k(key)),
  };
}

export default definePattern({
  sdkVersion: 1,
  type: '{{type}}',
  description: 'Key-value store under a fixed key prefix',
  api: 'keyvalue',
  slots: {
    store: {
      required: true,
      needs: [['keyvalue', 'ttl', 'scan']],
      description: 'where keys and values live',
    },
  },
  settings: {
    key_prefix: {
      description: 'prefix added to every key, e.g. app/',
      pattern: '[A-Za-z0-9/._-]*',
      default: '',
    },
  },
  createRunner,
});
