import { create } from '@bufbuild/protobuf';
import { crc32 } from 'node:zlib';
import {
  Consistency,
  Durability,
  NamespaceResponseSchema,
  PatternAssignmentSchema,
  SlotAssignmentSchema,
  type NamespaceRequest,
  type NamespaceResponse,
  type Needs,
} from '../gen/prism/config/v1/namespace_pb.js';
import { PrismError } from '../errors.js';
import { BACKENDS, backendFitsSlot, newestVersion, PATTERNS, type SlotSpec } from '../config/registry.js';
import { vaultBackendsText, vaultIssuesCredentials } from '../config/vault-credentials.js';
import type { BackendCatalog, BackendInstance } from './catalog.js';
import { partitionOf } from './partition.js';

/** Default preference when a slot names no backend; strong consistency moves postgres first. */
const PREFERENCE = ['redis', 'postgres', 'kafka', 'nats', 'sqlite', 'filesystem', 's3', 'memstore'];

/**
 * Layer 3 (pattern versions, session awareness) and layer 4 (a backend instance per slot, the
 * credential reference) for a canonical, valid namespace. Pure: the owner proxy is filled by the caller.
 */
export function assignNamespace(ns: NamespaceRequest, catalog: BackendCatalog): NamespaceResponse {
  const vaultEnabled = ns.auth?.vault?.enabled === true;
  const patterns = ns.patterns.map((pattern) => {
    const spec = PATTERNS[pattern.type];
    if (!spec) throw new PrismError('E_INVALID_NAMESPACE', `unknown pattern type '${pattern.type}'`);
    const sessionAware = vaultEnabled && spec.sessionAware;
    const slots = Object.keys(pattern.slots)
      .sort()
      .map((slotName) => {
        const binding = pattern.slots[slotName]!;
        const slotSpec = spec.slots[slotName]!;
        const backend =
          binding.backend ||
          chooseBackend(slotSpec, ns.needs, catalog, `${pattern.name}.${slotName}`, {
            vaultOnly: binding.credentials.startsWith('vault://'),
          });
        const instance = pickInstance(catalog, backend, `${ns.namespace}/${pattern.name}/${slotName}`);
        return create(SlotAssignmentSchema, {
          slot: slotName,
          backend,
          endpoint: instance.endpoint,
          credentialRef: credentialRef(
            ns,
            pattern.name,
            slotName,
            binding.credentials,
            sessionAware,
            backend,
          ),
        });
      });
    return create(PatternAssignmentSchema, {
      name: pattern.name,
      type: pattern.type,
      version: pattern.version || newestVersion(spec),
      sessionAware,
      slots,
    });
  });
  return create(NamespaceResponseSchema, {
    namespace: ns.namespace,
    partition: partitionOf(ns.namespace),
    patterns,
  });
}

function chooseBackend(
  slot: SlotSpec,
  needs: Needs | undefined,
  catalog: BackendCatalog,
  where: string,
  options: { vaultOnly: boolean },
): string {
  const order =
    needs?.consistency === Consistency.STRONG
      ? ['postgres', ...PREFERENCE.filter((b) => b !== 'postgres')]
      : PREFERENCE;
  const strong = needs?.durability === Durability.STRONG;
  const choice = order.find((name) => {
    const backend = BACKENDS[name]!;
    return (
      (catalog[name]?.length ?? 0) > 0 &&
      backendFitsSlot(backend, slot) &&
      (!strong || backend.durable) &&
      (!options.vaultOnly || vaultIssuesCredentials(name))
    );
  });
  if (!choice) {
    const vault = options.vaultOnly ? ` with credentials Vault can issue (${vaultBackendsText()})` : '';
    throw new PrismError(
      'E_BACKEND_UNAVAILABLE',
      `no backend in the catalog can fill slot ${where}${strong ? ' durably' : ''}${vault}`,
      {
        hint: 'bind a backend explicitly or add an instance to the backends catalog',
      },
    );
  }
  return choice;
}

/** A stable instance per slot, spread across the backend's instances by hash. */
function pickInstance(catalog: BackendCatalog, backend: string, key: string): BackendInstance {
  const instances = catalog[backend] ?? [];
  if (instances.length === 0) {
    throw new PrismError('E_BACKEND_UNAVAILABLE', `the backends catalog has no ${backend} instance`, {
      hint: `add one under backends.${backend} in the --backends file`,
    });
  }
  return instances[crc32(key) % instances.length]!;
}

/** The Vault login role of a Vault-enabled namespace: `auth.vault.role`, else `prism-<namespace>`. */
export function vaultLoginRole(ns: NamespaceRequest): string {
  return ns.auth?.vault?.role || `prism-${ns.namespace}`;
}

/**
 * The database role a session-aware slot leases from when its binding names no credentials:
 * `<login role>-<pattern>-<slot>`. `prismctl dev up` writes exactly these roles into Vault, and the
 * operator's setup (docs/identity.md §4) names them the same way.
 */
export function derivedDatabaseRole(ns: NamespaceRequest, pattern: string, slot: string): string {
  return `${vaultLoginRole(ns)}-${pattern}-${slot}`;
}

/**
 * An explicit reference wins; a session-aware slot whose backend Vault's database engine serves
 * (PostgreSQL, Redis) gets a per-slot `vault://database/creds/` path. Other slots of a session-aware
 * pattern (Kafka, NATS, memstore, sqlite) get none: no Vault engine issues their credentials, and
 * static ones are not allowed there (DESIGN.md §4 rule 5).
 */
function credentialRef(
  ns: NamespaceRequest,
  pattern: string,
  slot: string,
  declared: string,
  sessionAware: boolean,
  backend: string,
): string {
  if (declared && declared !== '<redacted>') return declared;
  if (!sessionAware || !vaultIssuesCredentials(backend)) return '';
  return `vault://database/creds/${derivedDatabaseRole(ns, pattern, slot)}`;
}
