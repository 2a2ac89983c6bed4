/**
 * One driver from parts that each implement some capabilities of the same backend (e.g. redis
 * keyvalue + redis pubsub). The combined driver declares the union of the parts' capabilities and
 * carries exactly the methods of those capabilities, each taken from the part that declared it, so
 * the conformance suite's "not declared → absent" holds for the whole as for each part.
 */
import type { AnyDriver, Capability, Driver } from './interfaces.js';

/** The methods each capability brings. */
export const CAPABILITY_METHODS: Readonly<Record<Capability, readonly string[]>> = {
  keyvalue: ['set', 'get', 'delete', 'exists'],
  ttl: ['expire', 'ttl', 'persist'],
  scan: ['scan'],
  pubsub: ['publish', 'publishMany', 'subscribe'],
  queue: ['enqueue', 'enqueueMany', 'consume'],
  mailbox: ['openMailbox'],
  objects: [
    'putObject',
    'putObjectStream',
    'getObject',
    'readObject',
    'statObject',
    'deleteObject',
    'renameObject',
    'sweepObjects',
  ],
};

/** Methods a part may add to a capability (one backend request for many keys), taken when present. */
const OPTIONAL_METHODS: Readonly<Partial<Record<Capability, readonly string[]>>> = {
  keyvalue: ['getMany', 'setMany'],
};

/**
 * Lifecycle: connect runs in order, health asks every part, close runs in reverse order and closes
 * every part even when one fails.
 */
export function combine(...parts: readonly AnyDriver[]): AnyDriver {
  const [first] = parts;
  if (first === undefined) throw new TypeError('combine() needs at least one driver part');
  const backend = first.backend;
  const capabilities = new Set<Capability>();
  const combined: Record<string, unknown> = {};

  for (const part of parts) {
    if (part.backend !== backend) {
      throw new TypeError(`cannot combine a ${part.backend} part with a ${backend} driver`);
    }
    for (const capability of part.capabilities) {
      if (capabilities.has(capability)) {
        throw new TypeError(`${backend}: capability ${capability} is declared by two parts`);
      }
      capabilities.add(capability);
      for (const method of CAPABILITY_METHODS[capability]) {
        const fn = (part as unknown as Record<string, unknown>)[method];
        if (typeof fn !== 'function') {
          throw new TypeError(`${backend}: a part declares ${capability} but has no ${method}()`);
        }
        combined[method] = (fn as (...args: unknown[]) => unknown).bind(part);
      }
      for (const method of OPTIONAL_METHODS[capability] ?? []) {
        const fn = (part as unknown as Record<string, unknown>)[method];
        if (typeof fn === 'function') combined[method] = (fn as (...args: unknown[]) => unknown).bind(part);
      }
    }
  }

  const lifecycle: Driver = {
    backend,
    capabilities,
    async connect() {
      // Parts already connected stay connected: connect() is idempotent, so a retry after a
      // BackendDownError resumes where this one stopped, and close() releases everything.
      for (const part of parts) await part.connect();
    },
    async health() {
      await Promise.all(parts.map((part) => part.health()));
    },
    async close() {
      let failure: { error: unknown } | undefined;
      for (const part of [...parts].reverse()) {
        try {
          await part.close();
        } catch (err) {
          failure ??= { error: err };
        }
      }
      if (failure) throw failure.error;
    },
  };
  return Object.assign(combined, lifecycle) as AnyDriver;
}
