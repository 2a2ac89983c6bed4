/**
 * The two files of the Docker stack as JSON Schemas for the config loader (src/config/config-file.ts):
 * the component catalog (templates/dev/components.yaml) and the changes in dev.yaml, whose schema
 * is built from the catalog so that component and port names are checked with a "did you mean".
 */
import type { ConfigFormat, JsonSchema } from '../config/config-file.js';
import { SCHEMA_DRAFT } from '../config/json-schema.js';

export const PROBE_TYPES = ['redis', 'postgres', 'nats', 'kafka', 'http'] as const;
export type ProbeType = (typeof PROBE_TYPES)[number];

export const STACK_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/;

/** A component as templates/dev/components.yaml writes it. */
export interface CatalogComponent {
  image: string;
  command?: string[];
  env?: Record<string, string | number | boolean>;
  ports: Record<string, number>;
  volume?: string;
  probe: { type: ProbeType; port: string; path?: string };
  dependsOn?: string[];
  files?: Record<string, string>;
  user?: string;
}

export interface CatalogFile {
  components: Record<string, CatalogComponent>;
}

/** What dev.yaml may change. */
export interface DevConfigFile {
  stack?: string;
  network?: 'bridge' | 'host';
  only?: string[];
  issuer?: string;
  components?: Record<
    string,
    {
      image?: string;
      command?: string[];
      env?: Record<string, string | number | boolean>;
      ports?: Record<string, number>;
      user?: string;
      volume?: string;
      enabled?: boolean;
    }
  >;
}

const PORT = { type: 'integer', minimum: 1, maximum: 65535 };
const COMMAND = { type: 'array', items: { type: 'string' } };
const ENV = {
  type: 'object',
  additionalProperties: {
    description: 'a string, number or boolean',
    anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }],
  },
};
const VOLUME = { type: 'string', pattern: '^/', description: 'an absolute path in the container' };

export const COMPONENTS_SCHEMA: JsonSchema = {
  $schema: SCHEMA_DRAFT,
  title: 'Prism dev stack component catalog',
  type: 'object',
  properties: {
    components: {
      type: 'object',
      minProperties: 1,
      additionalProperties: {
        type: 'object',
        properties: {
          image: { type: 'string', minLength: 1 },
          command: COMMAND,
          env: ENV,
          ports: { type: 'object', minProperties: 1, additionalProperties: PORT },
          volume: VOLUME,
          probe: {
            type: 'object',
            properties: {
              type: { type: 'string', enum: [...PROBE_TYPES] },
              port: { type: 'string' },
              path: { type: 'string', pattern: '^/', description: 'an absolute HTTP path' },
            },
            required: ['type', 'port'],
            additionalProperties: false,
          },
          dependsOn: { type: 'array', items: { type: 'string' } },
          files: { type: 'object', additionalProperties: { type: 'string' } },
          user: { type: 'string' },
        },
        required: ['image', 'ports', 'probe'],
        additionalProperties: false,
      },
    },
  },
  required: ['components'],
  additionalProperties: false,
};

export const COMPONENTS_FORMAT: ConfigFormat<CatalogFile> = {
  title: 'dev stack component catalog',
  schema: COMPONENTS_SCHEMA,
  hint: 'nothing was started; see docs/local-stack.md',
  check({ components }, problem) {
    for (const [name, c] of Object.entries(components)) {
      if (!(c.probe.port in c.ports)) {
        problem(
          'E_DEV_PROBE_PORT',
          `components.${name}.probe.port '${c.probe.port}' names no port of ${name}`,
          `use one of: ${Object.keys(c.ports).join(', ')}`,
          ['components', name, 'probe', 'port'],
        );
      }
      (c.dependsOn ?? []).forEach((dep, i) => {
        if (!(dep in components)) {
          problem(
            'E_DEV_COMPONENT',
            `components.${name}.dependsOn[${i}] names unknown component '${dep}'`,
            `use one of: ${Object.keys(components).join(', ')}`,
            ['components', name, 'dependsOn', i],
          );
        }
      });
    }
  },
};

/** The dev.yaml format for a catalog: its component names and each component's port names. */
export function devConfigFormat(
  catalog: Readonly<Record<string, { ports: Record<string, number> }>>,
): ConfigFormat<DevConfigFile> {
  const names = Object.keys(catalog);
  return {
    title: 'dev stack config',
    empty: {},
    hint: 'nothing was started; see docs/local-stack.md',
    schema: {
      $schema: SCHEMA_DRAFT,
      title: 'Prism dev stack config (dev.yaml)',
      type: 'object',
      properties: {
        stack: {
          type: 'string',
          pattern: STACK_NAME.source,
          description: '1-31 lowercase letters, digits or dashes',
        },
        network: { type: 'string', enum: ['bridge', 'host'] },
        only: { type: 'array', items: { type: 'string', enum: names } },
        issuer: {
          type: 'string',
          pattern: '^https?://[^\\s]+$',
          description: 'the http(s) URL of an OpenID issuer',
        },
        components: {
          type: 'object',
          properties: Object.fromEntries(
            Object.entries(catalog).map(([name, c]) => [
              name,
              {
                type: 'object',
                properties: {
                  image: { type: 'string', minLength: 1 },
                  command: COMMAND,
                  env: ENV,
                  ports: {
                    type: 'object',
                    properties: Object.fromEntries(Object.keys(c.ports).map((p) => [p, PORT])),
                    additionalProperties: false,
                  },
                  user: { type: 'string' },
                  volume: VOLUME,
                  enabled: { type: 'boolean' },
                },
                additionalProperties: false,
              },
            ]),
          ),
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
    check(file, problem) {
      if (file.issuer !== undefined && !URL.canParse(file.issuer)) {
        problem(
          'E_SCHEMA_PATTERN',
          `issuer '${file.issuer}' is not a URL`,
          'write the http(s) URL of an OpenID issuer',
          ['issuer'],
        );
      }
    },
  };
}
