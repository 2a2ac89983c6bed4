/**
 * Keyvalue drivers pointed at a loopback port where nothing listens: connect() fails fast with
 * BackendDownError, and the message names the backend and host:port but never the password that
 * came in the endpoint or in the credentials.
 */
import { describe, expect, it } from 'vitest';
import { freePort } from '../../support/ports.js';
import { BackendDownError } from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import { uniqueName } from '../../support/services.js';

const FAIL_FAST_MS = 3_000;
const SECRET = 'hunter2-do-not-print';

const CASES = [
  { backend: 'redis', endpoint: (port: number) => `redis://prism:${SECRET}@127.0.0.1:${port}` },
  { backend: 'postgres', endpoint: (port: number) => `postgres://prism:${SECRET}@127.0.0.1:${port}/prism` },
];

describe('keyvalue drivers with their backend down', () => {
  for (const { backend, endpoint } of CASES) {
    it(`${backend}: connect() fails fast with BackendDownError naming host:port, not the password`, async () => {
      const port = await freePort();
      const driver = await createDriver(backend, {
        endpoint: endpoint(port),
        namespace: uniqueName('down'),
        credentials: { username: 'prism', password: SECRET },
      });
      try {
        const started = Date.now();
        const error = await driver.connect().then(
          () => new Error('connect() succeeded with nothing listening'),
          (err: unknown) => err,
        );
        expect(Date.now() - started).toBeLessThan(FAIL_FAST_MS);
        expect(error).toBeInstanceOf(BackendDownError);
        const message = (error as Error).message;
        expect(message).toMatch(new RegExp(`^${backend} is unavailable: `));
        expect(message).toContain(`127.0.0.1:${port}`);
        expect(message).not.toContain(SECRET);
        expect(JSON.stringify(error)).not.toContain(SECRET);
      } finally {
        await driver.close();
      }
    });
  }
});
