import { DEFAULT_ADMIN_ENDPOINT } from '../client/endpoints.js';

/** How long completion waits for the control plane before offering no namespace names. */
const ADMIN_TIMEOUT_MS = 1000;

/** Namespace names from the control plane, or none when it does not answer in time. */
export async function namespacesFrom(endpoint: string | undefined): Promise<string[]> {
  // Loaded only when a namespace name is being completed (admin-flags.js brings oclif's Flags).
  const { adminClient } = await import('./admin-flags.js');
  const client = await adminClient(endpoint ?? process.env.PRISM_ADMIN_ENDPOINT ?? DEFAULT_ADMIN_ENDPOINT);
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ADMIN_TIMEOUT_MS);
    });
    const response = await Promise.race([client.list(), timeout]);
    return response.namespaces.map((namespace) => namespace.name).sort();
  } catch {
    return [];
  } finally {
    clearTimeout(timer);
    client.close();
  }
}
