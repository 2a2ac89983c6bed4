/**
 * The pattern and backend registry (DESIGN.md §4) as data. Validation, backend assignment and
 * `namespace init` read it; adding a backend or pattern version means editing only this file.
 */

export type Capability = 'keyvalue' | 'ttl' | 'scan' | 'pubsub' | 'queue' | 'mailbox' | 'objects';

/** A slot accepts a backend that implements every capability of at least one alternative. */
export interface SlotSpec {
  readonly required: boolean;
  readonly needs: ReadonlyArray<ReadonlyArray<Capability>>;
  readonly description: string;
}

export type SettingName =
  | 'default_ttl'
  | 'max_value_size'
  | 'max_message_size'
  | 'dead_letter_topic'
  | 'topic'
  | 'consumer_group'
  | 'max_retries'
  | 'batch_size'
  | 'batch_interval'
  | 'dedup_window'
  | 'ack_timeout'
  | 'session_ttl'
  | 'idle_timeout'
  | 'indexed_headers'
  | 'retention'
  | 'max_messages'
  | 'encryption'
  | 'schema'
  | 'claim_check'
  /** Settings of a pattern module's type (src/config/external-patterns.ts). */
  | 'custom';

export interface PatternSpec {
  readonly type: string;
  readonly description: string;
  /** Registered versions, oldest first; the last is the default. */
  readonly versions: readonly string[];
  readonly slots: Readonly<Record<string, SlotSpec>>;
  readonly settings: readonly SettingName[];
  readonly requiredSettings: readonly SettingName[];
  /** Values the canonical export fills in when a setting is absent. */
  readonly defaults: Readonly<Partial<Record<SettingName, string | number>>>;
  /** With Vault enabled, backend credentials come from per-session leases. */
  readonly sessionAware: boolean;
}

export interface BackendSpec {
  readonly name: string;
  readonly implements: readonly Capability[];
  readonly defaultEndpoint: string;
  /** Keeps data across restarts; `needs.durability: strong` avoids backends that do not. */
  readonly durable: boolean;
  /**
   * Largest message (payload and headers) the backend takes with its default configuration, for
   * backends with `pubsub` or `queue`; validation warns when a producer's `max_message_size` is
   * above it. Absent: no limit below the proxy's own 4 MiB request limit.
   */
  readonly messageLimit?: { readonly bytes: number; readonly text: string; readonly source: string };
}

export const PATTERNS: Readonly<Record<string, PatternSpec>> = {
  keyvalue: {
    type: 'keyvalue',
    description: 'Key-value store with TTLs and prefix scans',
    versions: ['v1'],
    slots: {
      store: { required: true, needs: [['keyvalue']], description: 'where keys and values live' },
    },
    settings: ['default_ttl', 'max_value_size'],
    requiredSettings: [],
    defaults: { default_ttl: '0s', max_value_size: '1MiB' },
    sessionAware: true,
  },
  producer: {
    type: 'producer',
    description: 'Publishes messages with retries, batching and deduplication',
    versions: ['v1'],
    slots: {
      sink: { required: true, needs: [['pubsub'], ['queue']], description: 'where messages are published' },
      state: { required: false, needs: [['keyvalue']], description: 'deduplication state' },
      objects: {
        required: false,
        needs: [['objects']],
        description: 'large payloads stored by reference (claim_check)',
      },
    },
    settings: [
      'topic',
      'max_retries',
      'batch_size',
      'batch_interval',
      'dedup_window',
      'max_message_size',
      'encryption',
      'schema',
      'claim_check',
    ],
    requiredSettings: ['topic'],
    defaults: { max_retries: 3, batch_size: 1, batch_interval: '10ms' },
    sessionAware: true,
  },
  consumer: {
    type: 'consumer',
    description: 'Consumes messages in groups with retries and a dead-letter queue',
    versions: ['v1'],
    slots: {
      source: { required: true, needs: [['pubsub'], ['queue']], description: 'where messages come from' },
      state: { required: false, needs: [['keyvalue']], description: 'consumer progress' },
      'dead-letter': {
        required: false,
        needs: [['queue']],
        description: 'messages that failed max_retries times',
      },
      objects: {
        required: false,
        needs: [['objects']],
        description: 'where claim-checked payloads are fetched from (claim_check)',
      },
    },
    settings: [
      'topic',
      'consumer_group',
      'max_retries',
      'ack_timeout',
      'dead_letter_topic',
      'encryption',
      'claim_check',
    ],
    requiredSettings: ['topic', 'consumer_group'],
    defaults: { max_retries: 3, ack_timeout: '30s' },
    sessionAware: true,
  },
  'session-manager': {
    type: 'session-manager',
    description: 'Sessions with TTL and idle timeout',
    versions: ['v1'],
    slots: {
      store: { required: true, needs: [['keyvalue', 'ttl', 'scan']], description: 'where sessions live' },
    },
    settings: ['session_ttl', 'idle_timeout'],
    requiredSettings: [],
    defaults: { session_ttl: '1h', idle_timeout: '15m' },
    sessionAware: false,
  },
  mailbox: {
    type: 'mailbox',
    description:
      'Stores every message of a topic once, searchable by time, ids, publisher and indexed headers',
    versions: ['v1'],
    slots: {
      source: { required: true, needs: [['pubsub'], ['queue']], description: 'where messages come from' },
      store: { required: true, needs: [['mailbox']], description: 'where messages are stored and indexed' },
    },
    settings: ['topic', 'indexed_headers', 'retention', 'max_messages', 'max_message_size'],
    requiredSettings: ['topic'],
    defaults: { retention: 'forever', max_message_size: '1MiB' },
    sessionAware: false,
  },
};

export const BACKENDS: Readonly<Record<string, BackendSpec>> = {
  memstore: {
    name: 'memstore',
    implements: ['keyvalue', 'ttl', 'scan', 'pubsub', 'queue', 'objects'],
    defaultEndpoint: 'memory://',
    durable: false,
  },
  sqlite: {
    name: 'sqlite',
    implements: ['keyvalue', 'ttl', 'scan', 'mailbox'],
    defaultEndpoint: 'file:data/sqlite',
    durable: true,
  },
  redis: {
    name: 'redis',
    // pubsub on Redis pub/sub (at-most-once), queue on Redis Streams (at-least-once).
    implements: ['keyvalue', 'ttl', 'scan', 'pubsub', 'queue'],
    defaultEndpoint: 'redis://localhost:6379',
    durable: true,
  },
  postgres: {
    name: 'postgres',
    implements: ['keyvalue', 'ttl', 'scan', 'queue', 'mailbox'],
    defaultEndpoint: 'postgres://localhost:5432/prism',
    durable: true,
  },
  nats: {
    name: 'nats',
    implements: ['pubsub', 'queue'],
    defaultEndpoint: 'nats://localhost:4222',
    durable: true,
    messageLimit: { bytes: 1024 ** 2, text: '1MiB', source: "the server's default max_payload" },
  },
  kafka: {
    name: 'kafka',
    implements: ['pubsub', 'queue'],
    defaultEndpoint: 'kafka://localhost:9092',
    durable: true,
    messageLimit: { bytes: 1024 ** 2, text: '1MiB', source: "the broker's default message.max.bytes" },
  },
  filesystem: {
    name: 'filesystem',
    // Objects as files under the prism home (the embedded default for claim checks).
    implements: ['objects'],
    defaultEndpoint: 'file:data/objects',
    durable: true,
  },
  s3: {
    name: 's3',
    // Any S3-compatible store: <http|https>://host[:port]/<bucket>[?region=...], path-style.
    implements: ['objects'],
    defaultEndpoint: 'http://localhost:8333/prism-objects',
    durable: true,
  },
};

export const PATTERN_TYPES = Object.keys(PATTERNS);
export const BACKEND_NAMES = Object.keys(BACKENDS);

export function newestVersion(spec: PatternSpec): string {
  return spec.versions[spec.versions.length - 1] ?? 'v1';
}

/** True when `backend` implements every capability of at least one alternative the slot accepts. */
export function backendFitsSlot(backend: BackendSpec, slot: SlotSpec): boolean {
  return slot.needs.some((alternative) => alternative.every((cap) => backend.implements.includes(cap)));
}

export function describeNeeds(slot: SlotSpec): string {
  return slot.needs.map((alt) => alt.join('+')).join(' or ');
}
