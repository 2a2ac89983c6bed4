import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { PrismError } from '../errors.js';
import { BACKEND_NAMES, BACKENDS } from '../config/registry.js';
import { didYouMean } from '../config/suggest.js';

/** One backend instance slots can be assigned to. Endpoints never carry credentials. */
export interface BackendInstance {
  name: string;
  backend: string;
  endpoint: string;
}

/** Backend type → its instances, in the operator's order. */
export type BackendCatalog = Readonly<Record<string, readonly BackendInstance[]>>;

/** One local instance of every backend at its default endpoint (DESIGN.md §4). */
export function defaultCatalog(): BackendCatalog {
  return Object.fromEntries(
    BACKEND_NAMES.map((b) => [
      b,
      [{ name: `local-${b}`, backend: b, endpoint: BACKENDS[b]!.defaultEndpoint }],
    ]),
  );
}

/**
 * Reads an operator's catalog: `backends: { redis: [{ name, endpoint }], ... }`. Backends it does
 * not list have no instances, so slots cannot be assigned to them.
 */
export async function loadCatalog(file: string): Promise<BackendCatalog> {
  let doc: unknown;
  try {
    doc = parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new PrismError(
      'E_INPUT_UNREADABLE',
      `cannot read backends file ${file}: ${(err as Error).message}`,
      {
        hint: 'pass a YAML file with `backends: { redis: [{ name: main, endpoint: redis://host:6379 }] }`',
      },
    );
  }
  const backends = (doc as { backends?: unknown })?.backends;
  if (typeof backends !== 'object' || backends === null || Array.isArray(backends)) {
    throw catalogError(file, 'has no `backends:` mapping');
  }
  const catalog: Record<string, BackendInstance[]> = {};
  for (const [backend, list] of Object.entries(backends)) {
    if (!BACKENDS[backend])
      throw catalogError(file, `names unknown backend '${backend}'; ${didYouMean(backend, BACKEND_NAMES)}`);
    if (!Array.isArray(list))
      throw catalogError(file, `backends.${backend} must be a list of { name, endpoint }`);
    catalog[backend] = list.map((item, i) => {
      const { name, endpoint } = (item ?? {}) as { name?: unknown; endpoint?: unknown };
      if (typeof name !== 'string' || typeof endpoint !== 'string') {
        throw catalogError(file, `backends.${backend}[${i}] needs string fields name and endpoint`);
      }
      if (hasUserInfo(endpoint)) {
        throw catalogError(
          file,
          `backends.${backend}[${i}].endpoint carries credentials; keep them in Vault or the environment`,
        );
      }
      return { name, backend, endpoint };
    });
  }
  return catalog;
}

function hasUserInfo(endpoint: string): boolean {
  try {
    const url = new URL(endpoint);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}

function catalogError(file: string, what: string): PrismError {
  return new PrismError('E_INPUT_UNREADABLE', `backends file ${file} ${what}`);
}
