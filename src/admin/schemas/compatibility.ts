/**
 * The registry's compatibility check (docs/schemas.md, Compatibility modes): which older versions a
 * new schema is compared with, in which direction, by the rules of its type.
 */
import { avroProblems, parseAvro, type ParsedAvro } from './avro.js';
import { jsonSchemaProblems, parseJsonSchema, type ParsedJsonSchema } from './json-schema.js';
import { modeChecks, type CompatibilityMode, type SchemaType } from './modes.js';
import { parseProtobuf, protobufProblems, type ParsedProtobuf } from './protobuf.js';

/** A parsed schema; `normalized` is equal for the same schema written differently. */
export type ParsedSchema =
  | { type: 'AVRO'; normalized: string; avro: ParsedAvro }
  | { type: 'JSON'; normalized: string; json: ParsedJsonSchema }
  | { type: 'PROTOBUF'; normalized: string; proto: ParsedProtobuf };

/** Parses a schema of a type; throws RegistryError 42201 when it does not parse. */
export async function parseSchema(type: SchemaType, text: string): Promise<ParsedSchema> {
  if (type === 'AVRO') {
    const avro = parseAvro(text);
    return { type, normalized: avro.normalized, avro };
  }
  if (type === 'JSON') {
    const json = parseJsonSchema(text);
    return { type, normalized: json.normalized, json };
  }
  const proto = await parseProtobuf(text);
  return { type, normalized: proto.normalized, proto };
}

/** Why `reader` cannot read data written with `writer` (same type). */
async function problemsReading(reader: ParsedSchema, writer: ParsedSchema): Promise<string[]> {
  if (reader.type === 'AVRO' && writer.type === 'AVRO') return avroProblems(reader.avro, writer.avro);
  if (reader.type === 'JSON' && writer.type === 'JSON') return jsonSchemaProblems(reader.json, writer.json);
  if (reader.type === 'PROTOBUF' && writer.type === 'PROTOBUF')
    return protobufProblems(reader.proto, writer.proto);
  return [`schema type changed from ${writer.type} to ${reader.type}`];
}

/**
 * What breaks if `candidate` is registered after `versions` (oldest first, live versions only)
 * under `mode`; each line names the version it breaks with. Empty when compatible.
 */
export async function compatibilityProblems(
  mode: CompatibilityMode,
  candidate: ParsedSchema,
  versions: ReadonlyArray<{ version: number; schema: ParsedSchema }>,
): Promise<string[]> {
  if (mode === 'NONE' || versions.length === 0) return [];
  const { backward, forward, transitive } = modeChecks(mode);
  const against = transitive ? versions : versions.slice(-1);
  const problems: string[] = [];
  for (const { version, schema } of against) {
    if (schema.type !== candidate.type) {
      problems.push(`version ${version}: schema type changed from ${schema.type} to ${candidate.type}`);
      continue;
    }
    // Protobuf's wire rules are the same in both directions (docs/schemas.md): new against old only.
    if (candidate.type === 'PROTOBUF') {
      for (const p of await problemsReading(candidate, schema)) problems.push(`version ${version}: ${p}`);
      continue;
    }
    if (backward)
      for (const p of await problemsReading(candidate, schema))
        problems.push(`version ${version} (BACKWARD, new schema reads old data): ${p}`);
    if (forward)
      for (const p of await problemsReading(schema, candidate))
        problems.push(`version ${version} (FORWARD, old schema reads new data): ${p}`);
  }
  return problems;
}

export type { SchemaType };
