/**
 * The postgres keyvalue driver when the server ends its sessions (pg_terminate_backend, as on a
 * failover or an operator's kill): calls fail with BackendDownError rather than a raw pg error,
 * never hang, and the pool's fresh connections serve the data again without a new connect().
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { BackendDownError, type AnyDriver, type KeyValueStore } from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import { connectPostgres, describeWithService, postgresUrl, uniqueName } from '../../support/services.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);

await describeWithService('postgres', 'postgres keyvalue driver when its sessions are terminated', () => {
  const namespace = uniqueName('terminate');
  let driver: AnyDriver & KeyValueStore;
  let admin: pg.Client;

  beforeAll(async () => {
    driver = (await createDriver('postgres', { endpoint: postgresUrl(), namespace })) as AnyDriver &
      KeyValueStore;
    await driver.connect();
    admin = await connectPostgres();
  });

  afterAll(async () => {
    await driver?.close();
    await admin?.end();
  });

  it('reports BackendDownError for calls on ended sessions and recovers on fresh connections', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => driver.set(`k${i}`, text(`v${i}`))));

    const { rowCount } = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
      [`prism-kv/${namespace}`],
    );
    expect(rowCount).toBeGreaterThan(0);

    // Each call either succeeds on a fresh connection or fails as an outage, never otherwise.
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => driver.get(`k${i}`)));
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(BackendDownError);
    }

    const values = await Promise.all(Array.from({ length: 20 }, (_, i) => driver.get(`k${i}`)));
    expect(values.map(str)).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`));
    await expect(driver.health()).resolves.toBeUndefined();
  });
});
