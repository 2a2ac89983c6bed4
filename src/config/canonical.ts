import { clone, create, toJson } from '@bufbuild/protobuf';
import { yamlLib } from './yaml-lib.js';
import {
  NamespaceRequestSchema,
  PatternSettingsSchema,
  type NamespaceRequest,
} from '../gen/prism/config/v1/namespace_pb.js';
import { protoJsonToYaml } from './proto-json.js';
import { newestVersion, PATTERNS } from './registry.js';

export const REDACTED = '<redacted>';
const REFERENCE = /^(vault:\/\/.+|\$\{[A-Za-z_][A-Za-z0-9_]*\})$/;

export type CanonicalFormat = 'yaml' | 'json';

/**
 * The canonical form of a namespace: defaults filled in from the registry, literal secrets
 * redacted, map keys sorted. It is a fixed point: canonicalizing it again changes nothing.
 */
export function canonicalNamespace(ns: NamespaceRequest): NamespaceRequest {
  const out = clone(NamespaceRequestSchema, ns);
  for (const pattern of out.patterns) {
    const spec = PATTERNS[pattern.type];
    if (spec) {
      if (!pattern.version) pattern.version = newestVersion(spec);
      pattern.settings ??= create(PatternSettingsSchema);
      const settings = pattern.settings as unknown as Record<string, unknown>;
      for (const [name, value] of Object.entries(spec.defaults)) {
        const field = PatternSettingsSchema.fields.find((f) => f.name === name);
        if (!field) continue;
        const current = settings[field.localName];
        if (current === undefined || current === '') settings[field.localName] = value;
      }
    }
    for (const binding of Object.values(pattern.slots)) {
      if (binding.credentials && !REFERENCE.test(binding.credentials)) binding.credentials = REDACTED;
    }
  }
  return out;
}

/** Plain YAML-shaped object of the canonical form (proto field order, sorted map keys). */
export function canonicalObject(ns: NamespaceRequest): Record<string, unknown> {
  const json = toJson(NamespaceRequestSchema, canonicalNamespace(ns), { useProtoFieldName: true });
  return sortMaps(protoJsonToYaml(json, NamespaceRequestSchema)) as Record<string, unknown>;
}

export function renderCanonical(namespaces: readonly NamespaceRequest[], format: CanonicalFormat): string {
  const objects = namespaces.map(canonicalObject);
  if (format === 'json') {
    const value = objects.length === 1 ? objects[0] : { namespaces: objects };
    return JSON.stringify(value, null, 2) + '\n';
  }
  return objects.map((o) => yamlLib().stringify(o, { lineWidth: 0 })).join('---\n');
}

const MAP_KEYS = new Set(['slots', 'metadata']);

function sortMaps(value: unknown, key?: string): unknown {
  if (Array.isArray(value)) return value.map((v) => sortMaps(v));
  if (typeof value !== 'object' || value === null) return value;
  let entries = Object.entries(value as Record<string, unknown>);
  if (key && MAP_KEYS.has(key)) entries = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries.map(([k, v]) => [k, sortMaps(v, k)]));
}
