/**
 * The SDK's KeyValue runner conformance suite against this pattern, on memstore (no service
 * needed); bind the slot to your backend (e.g. redis with an endpoint) to test on it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPatternRunner, keyValueRunnerConformance } from 'prismctl/sdk';
import definition from '../src/index.js';

keyValueRunnerConformance(
  '{{type}} on memstore',
  async () =>
    createPatternRunner(definition, {
      namespace: `conformance-${process.pid}`,
      slots: [{ slot: 'store', backend: 'memstore' }],
      settings: { key_prefix: 'app/' },
    }),
  { describe, it, beforeAll, afterAll, expect },
);
