import { Flags } from '@oclif/core';
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { bearerTokenFor } from '../auth/bearer.js';
import { DEFAULT_SCHEMA_REGISTRY_URL, SchemaRegistryClient } from '../client/schema-registry-client.js';
import { PrismError, UsageError } from '../errors.js';

/** --registry for the schema commands: the admin's HTTP address. */
export const registryFlags = {
  registry: Flags.string({
    description: "Schema registry URL: the admin's HTTP address (its --metrics-listen)",
    env: 'PRISM_SCHEMA_REGISTRY',
    default: DEFAULT_SCHEMA_REGISTRY_URL,
    helpGroup: 'CONNECTION',
  }),
};

/** A client carrying the caller's token (PRISM_TOKEN or the login cache). */
export async function registryClient(flags: { registry: string }): Promise<SchemaRegistryClient> {
  const token = await bearerTokenFor(process.env.PRISM_TOKEN);
  const url = new URL(flags.registry);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (token && url.protocol === 'http:' && !loopback)
    throw new UsageError(
      `refusing to send a bearer token in clear text to ${url.host}`,
      'use an https:// registry URL (the admin serves HTTPS when it has --tls-cert)',
    );
  return new SchemaRegistryClient(flags.registry, token);
}

/** --type: the schema type, inferred from the file's extension when not given. */
export const schemaTypeFlag = Flags.string({
  description:
    'Schema type (default from the file extension: .avsc AVRO, .json JSON, .proto/.binpb/.pb PROTOBUF)',
  options: ['AVRO', 'JSON', 'PROTOBUF'],
});

const BY_EXTENSION: Readonly<Record<string, string>> = {
  '.avsc': 'AVRO',
  '.avro': 'AVRO',
  '.json': 'JSON',
  '.proto': 'PROTOBUF',
  '.binpb': 'PROTOBUF',
  '.pb': 'PROTOBUF',
};

/**
 * Reads a schema file as the registry takes it: text, or for a binary FileDescriptorSet
 * (.binpb, .pb) its base64.
 */
export function readSchemaFile(
  file: string,
  type: string | undefined,
): { schema: string; schemaType: string } {
  const ext = extname(file).toLowerCase();
  const schemaType = type ?? BY_EXTENSION[ext];
  if (!schemaType)
    throw new UsageError(`cannot tell the schema type of ${file}`, 'give --type AVRO, JSON or PROTOBUF');
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new PrismError('E_INPUT_UNREADABLE', `cannot read ${file}: ${(err as Error).message}`);
  }
  const binary = ext === '.binpb' || ext === '.pb';
  return { schema: binary ? bytes.toString('base64') : bytes.toString('utf8'), schemaType };
}
