import { RegistryError } from './errors.js';

export const COMPATIBILITY_MODES = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
  'NONE',
] as const;

export type CompatibilityMode = (typeof COMPATIBILITY_MODES)[number];

/** The mode of a subject with no mode of its own while no global mode is set. */
export const DEFAULT_MODE: CompatibilityMode = 'BACKWARD';

export function parseMode(value: unknown): CompatibilityMode {
  const mode = typeof value === 'string' ? value.toUpperCase() : '';
  if ((COMPATIBILITY_MODES as readonly string[]).includes(mode)) return mode as CompatibilityMode;
  throw new RegistryError(
    42203,
    `Invalid compatibility level ${JSON.stringify(value)}: expected one of ${COMPATIBILITY_MODES.join(', ')}`,
  );
}

/** What a mode checks: which directions, and against the latest version only or all of them. */
export function modeChecks(mode: CompatibilityMode): {
  backward: boolean;
  forward: boolean;
  transitive: boolean;
} {
  return {
    backward: mode.startsWith('BACKWARD') || mode.startsWith('FULL'),
    forward: mode.startsWith('FORWARD') || mode.startsWith('FULL'),
    transitive: mode.endsWith('_TRANSITIVE'),
  };
}

export const SCHEMA_TYPES = ['AVRO', 'JSON', 'PROTOBUF'] as const;
export type SchemaType = (typeof SCHEMA_TYPES)[number];

export function parseSchemaType(value: unknown): SchemaType {
  if (value === undefined || value === null || value === '') return 'AVRO';
  const type = typeof value === 'string' ? value.toUpperCase() : '';
  if ((SCHEMA_TYPES as readonly string[]).includes(type)) return type as SchemaType;
  throw new RegistryError(
    42201,
    `Invalid schema type ${JSON.stringify(value)}: expected AVRO, JSON or PROTOBUF`,
  );
}
