import { loadConfigFile, type ConfigFormat } from '../config/config-file.js';
import { SCHEMA_DRAFT } from '../config/json-schema.js';
import { BACKEND_NAMES, BACKENDS } from '../config/registry.js';

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

interface CatalogFile {
  backends: Record<string, Array<{ name: string; endpoint: string }>>;
}

const INSTANCE_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, description: 'the instance name, e.g. main' },
    endpoint: {
      type: 'string',
      minLength: 1,
      description: 'where the backend listens, without credentials, e.g. redis://host:6379',
    },
  },
  required: ['name', 'endpoint'],
  additionalProperties: false,
};

/** `backends: { <backend>: [{ name, endpoint }] }`; every key is a registered backend. */
export const CATALOG_SCHEMA = {
  $schema: SCHEMA_DRAFT,
  title: 'Prism backends catalog',
  description:
    'Backend instances per backend type, for `admin serve --backends` and `proxy serve --backends`',
  type: 'object',
  properties: {
    backends: {
      type: 'object',
      properties: Object.fromEntries(
        BACKEND_NAMES.map((b) => [b, { type: 'array', items: INSTANCE_SCHEMA }]),
      ),
      additionalProperties: false,
    },
  },
  required: ['backends'],
  additionalProperties: false,
};

export const CATALOG_FORMAT: ConfigFormat<CatalogFile> = {
  title: 'backends catalog',
  schema: CATALOG_SCHEMA,
  hint: 'write `backends: { redis: [{ name: main, endpoint: redis://host:6379 }] }`',
  check(file, problem) {
    for (const [backend, list] of Object.entries(file.backends)) {
      list.forEach((item, i) => {
        if (hasUserInfo(item.endpoint)) {
          problem(
            'E_CATALOG_CREDENTIALS',
            `backends.${backend}[${i}].endpoint carries credentials`,
            'keep them in Vault or the environment',
            ['backends', backend, i, 'endpoint'],
          );
        }
      });
    }
  },
};

/**
 * Reads an operator's catalog: `backends: { redis: [{ name, endpoint }], ... }`. Backends it does
 * not list have no instances, so slots cannot be assigned to them.
 */
export async function loadCatalog(file: string): Promise<BackendCatalog> {
  const { backends } = loadConfigFile(file, CATALOG_FORMAT);
  return Object.fromEntries(
    Object.entries(backends).map(([backend, list]) => [
      backend,
      list.map(({ name, endpoint }) => ({ name, backend, endpoint })),
    ]),
  );
}

function hasUserInfo(endpoint: string): boolean {
  try {
    const url = new URL(endpoint);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}
