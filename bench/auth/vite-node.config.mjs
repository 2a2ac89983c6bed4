// vite-node config for bench/auth/sessions.ts: the benchmark reuses test/support (the real-Vault
// fixture, dev logins, the proxy process), whose service helpers import vitest for describe/it;
// outside a test run those are never called, so vitest resolves to an empty stub here.
import { fileURLToPath, URL } from 'node:url';

export default {
  resolve: { alias: { vitest: fileURLToPath(new URL('./vitest-stub.mjs', import.meta.url)) } },
};
