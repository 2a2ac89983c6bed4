import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { SlotAssignmentSchema } from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { KeyValueRunner } from '../../../src/runners/keyvalue/runner.js';
import { SlotSet, type Credentials } from '../../../src/runners/slots.js';
import type { BackendSession } from '../../../src/runners/types.js';
import { bytes, text, uniqueNamespace } from './helpers.js';

/** A caller's session as the proxy hands it over: credentials leased per caller, close hooks. */
class FakeSession implements BackendSession {
  readonly leased: string[] = [];
  readonly released: string[] = [];
  private readonly hooks: Array<() => Promise<void>> = [];
  failNext = false;

  constructor(readonly id: string) {}

  readonly credentials = async (): Promise<Credentials> => {
    if (this.failNext) {
      this.failNext = false;
      throw Object.assign(new Error('vault is down'), { code: 'E_UNAVAILABLE' });
    }
    const username = `${this.id}-user-${this.leased.length + 1}`;
    this.leased.push(username);
    return { username, password: 'pw', release: async () => void this.released.push(username) };
  };

  onClose(hook: () => Promise<void>): void {
    this.hooks.push(hook);
  }

  async close(): Promise<void> {
    for (const hook of this.hooks.splice(0).reverse()) await hook();
  }
}

async function perCallerRunner(): Promise<KeyValueRunner> {
  const namespace = uniqueNamespace('caller');
  const slots = new SlotSet(
    namespace,
    'cache',
    'keyvalue',
    [
      create(SlotAssignmentSchema, {
        slot: 'store',
        backend: 'memstore',
        credentialRef: `vault://database/creds/prism-${namespace}-cache-store`,
      }),
    ],
    { perCaller: ['store'] },
  );
  const runner = new KeyValueRunner(namespace, 'cache', slots, {
    defaultTtlMs: 0,
    maxValueSizeBytes: 1024,
    maxValueSizeText: '1KiB',
  });
  await runner.start();
  return runner;
}

describe('keyvalue runner with a per-caller store', () => {
  it('leases nothing at start and refuses calls that come without a caller session', async () => {
    const runner = await perCallerRunner();
    expect(runner.needsCallerSession).toBe(true);
    await expect(runner.get('k')).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    await runner.health();
    await runner.stop();
  });

  it('opens a caller’s store with that caller’s credentials on the first call and reuses it', async () => {
    const runner = await perCallerRunner();
    const alice = new FakeSession('alice');
    const kv = await runner.forCaller(alice);
    await kv.set('greeting', bytes('hello'));
    expect(text(await (await runner.forCaller(alice)).get('greeting'))).toBe('hello');
    expect(alice.leased).toEqual(['alice-user-1']);
    expect(runner.callerConnections).toBe(1);
    await runner.stop();
  });

  it('gives each caller a store of their own', async () => {
    const runner = await perCallerRunner();
    const alice = new FakeSession('alice');
    const bob = new FakeSession('bob');
    await (await runner.forCaller(alice)).get('k');
    await (await runner.forCaller(bob)).get('k');
    expect(runner.callerConnections).toBe(2);
    expect([alice.leased, bob.leased]).toEqual([['alice-user-1'], ['bob-user-1']]);
    await runner.stop();
  });

  it('closes the caller’s store and releases its credentials when the caller’s session closes', async () => {
    const runner = await perCallerRunner();
    const alice = new FakeSession('alice');
    await (await runner.forCaller(alice)).get('k');
    await alice.close();
    expect(alice.released).toEqual(['alice-user-1']);
    expect(runner.callerConnections).toBe(0);
    await runner.stop();
  });

  it('lets a caller’s running calls finish before its store closes', async () => {
    const runner = await perCallerRunner();
    const alice = new FakeSession('alice');
    const kv = await runner.forCaller(alice);
    const writes = Array.from({ length: 20 }, (_, i) => kv.set(`k${i}`, bytes('v')));
    await alice.close();
    await expect(Promise.all(writes)).resolves.toHaveLength(20);
    expect(alice.released).toEqual(['alice-user-1']);
    await runner.stop();
  });

  it('releases every caller’s credentials when the runner stops', async () => {
    const runner = await perCallerRunner();
    const alice = new FakeSession('alice');
    const bob = new FakeSession('bob');
    await (await runner.forCaller(alice)).get('k');
    await (await runner.forCaller(bob)).get('k');
    await runner.stop();
    expect([alice.released, bob.released]).toEqual([['alice-user-1'], ['bob-user-1']]);
  });

  it('forgets a caller whose credentials could not be leased, so the next call tries again', async () => {
    const runner = await perCallerRunner();
    const alice = new FakeSession('alice');
    alice.failNext = true;
    await expect((await runner.forCaller(alice)).get('k')).rejects.toThrow('vault is down');
    expect(runner.callerConnections).toBe(0);
    await (await runner.forCaller(alice)).get('k');
    expect(alice.leased).toEqual(['alice-user-1']);
    await runner.stop();
  });
});
