/**
 * JSON Schema: parsed and compiled with ajv; compatibility by the rules listed in docs/schemas.md
 * (Compatibility modes, JSON Schema), each problem named by its JSON pointer in the reader schema.
 */
import { Ajv } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { invalidSchema } from './errors.js';

type Schema = boolean | { [keyword: string]: unknown };

export interface ParsedJsonSchema {
  schema: Schema;
  /** Keys sorted at every level: equal for schemas that differ only in layout. */
  normalized: string;
}

export function parseJsonSchema(text: string): ParsedJsonSchema {
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (err) {
    throw invalidSchema(`JSON Schema is not JSON: ${(err as Error).message}`);
  }
  if (typeof schema !== 'boolean' && (typeof schema !== 'object' || schema === null || Array.isArray(schema)))
    throw invalidSchema('a JSON Schema must be an object or a boolean');
  const declared = typeof schema === 'object' ? (schema as { $schema?: unknown }).$schema : undefined;
  const dialect = typeof declared === 'string' ? declared : '';
  const options = { strict: false, validateFormats: false };
  const ajv = dialect.includes('2020-12')
    ? new Ajv2020(options)
    : dialect.includes('2019-09')
      ? new Ajv2019(options)
      : new Ajv(options);
  try {
    ajv.compile(schema as Schema);
  } catch (err) {
    throw invalidSchema(`JSON Schema: ${(err as Error).message}`);
  }
  return { schema: schema as Schema, normalized: stableStringify(schema) };
}

/** Why data valid under `writer` may be refused by `reader` (empty when it cannot be). */
export function jsonSchemaProblems(reader: ParsedJsonSchema, writer: ParsedJsonSchema): string[] {
  const problems: string[] = [];
  new Comparison(reader.schema, writer.schema, problems).compare(reader.schema, writer.schema, '#');
  return problems;
}

const LOWER_BOUNDS = ['minimum', 'exclusiveMinimum', 'minLength', 'minItems', 'minProperties'];
const UPPER_BOUNDS = ['maximum', 'exclusiveMaximum', 'maxLength', 'maxItems', 'maxProperties'];
const NOT_ANALYSED = ['const', 'pattern', 'format', 'allOf', 'anyOf', 'oneOf', 'not', 'if', 'then', 'else'];

class Comparison {
  /** Pairs already compared (recursive $refs). */
  private readonly seen = new Map<object, Set<object>>();

  constructor(
    private readonly readerRoot: Schema,
    private readonly writerRoot: Schema,
    private readonly problems: string[],
  ) {}

  compare(readerNode: Schema, writerNode: Schema, path: string): void {
    const reader = asObject(resolve(readerNode, this.readerRoot));
    const writer = asObject(resolve(writerNode, this.writerRoot));
    if (reader === false) {
      if (writer !== false) this.problems.push(`${path}: the reader schema is false and accepts nothing`);
      return;
    }
    if (writer === false) return;
    const pairs = this.seen.get(reader) ?? new Set<object>();
    if (pairs.has(writer)) return;
    pairs.add(writer);
    this.seen.set(reader, pairs);
    const report = (message: string) => this.problems.push(`${path}: ${message}`);

    this.compareTypes(reader, writer, report);
    const writerRequired = new Set(strings(writer.required));
    for (const name of strings(reader.required))
      if (!writerRequired.has(name)) report(`property '${name}' became required`);

    const readerProps = objectOf(reader.properties);
    const writerProps = objectOf(writer.properties);
    for (const [name, writerProp] of Object.entries(writerProps)) {
      const at = `${path}/properties/${escape(name)}`;
      if (name in readerProps) this.compare(readerProps[name] as Schema, writerProp as Schema, at);
      else if (reader.additionalProperties === false)
        report(`property '${name}' removed from a closed model (additionalProperties: false)`);
      else if (isSchemaObject(reader.additionalProperties))
        this.compare(reader.additionalProperties, writerProp as Schema, `${path}/additionalProperties`);
    }
    if (isSchemaObject(writer.additionalProperties)) {
      for (const [name, readerProp] of Object.entries(readerProps))
        if (!(name in writerProps))
          this.compare(
            readerProp as Schema,
            writer.additionalProperties,
            `${path}/properties/${escape(name)}`,
          );
    }
    if (reader.additionalProperties === false && writer.additionalProperties !== false)
      report('additionalProperties closed (false) where the writer allowed more properties');
    else if (isSchemaObject(reader.additionalProperties) && isSchemaObject(writer.additionalProperties))
      this.compare(reader.additionalProperties, writer.additionalProperties, `${path}/additionalProperties`);

    if (isSchemaObject(reader.items) || typeof reader.items === 'boolean') {
      const writerItems =
        isSchemaObject(writer.items) || typeof writer.items === 'boolean' ? writer.items : true;
      this.compare(reader.items as Schema, writerItems as Schema, `${path}/items`);
    }

    if (Array.isArray(reader.enum)) {
      if (!Array.isArray(writer.enum)) report('enum added where the writer allowed any value');
      else {
        const allowed = new Set(reader.enum.map(stableStringify));
        for (const value of writer.enum)
          if (!allowed.has(stableStringify(value))) report(`enum value ${JSON.stringify(value)} removed`);
      }
    }

    for (const keyword of LOWER_BOUNDS) {
      const r = reader[keyword];
      const w = writer[keyword];
      if (typeof r === 'number' && (typeof w !== 'number' || r > w))
        report(`constraint tightened: ${keyword} ${typeof w === 'number' ? `${w} → ` : 'added: '}${r}`);
    }
    for (const keyword of UPPER_BOUNDS) {
      const r = reader[keyword];
      const w = writer[keyword];
      if (typeof r === 'number' && (typeof w !== 'number' || r < w))
        report(`constraint tightened: ${keyword} ${typeof w === 'number' ? `${w} → ` : 'added: '}${r}`);
    }
    for (const keyword of NOT_ANALYSED) {
      if (keyword in reader && stableStringify(reader[keyword]) !== stableStringify(writer[keyword]))
        report(`${keyword} changed (not analysed; use mode NONE to allow it)`);
    }
  }

  private compareTypes(
    reader: Record<string, unknown>,
    writer: Record<string, unknown>,
    report: (message: string) => void,
  ): void {
    const readerTypes = typesOf(reader);
    if (!readerTypes) return;
    const writerTypes = typesOf(writer);
    if (!writerTypes) {
      report(`type narrowed to ${readerTypes.join(', ')} where the writer allowed any type`);
      return;
    }
    for (const type of writerTypes) {
      const accepted = readerTypes.includes(type) || (type === 'integer' && readerTypes.includes('number'));
      if (!accepted)
        report(`type narrowed: the writer allows ${type}, the reader only ${readerTypes.join(', ')}`);
    }
  }
}

/** Follows local `$ref`s (`#/...`), as far as they lead. */
function resolve(node: Schema, root: Schema): Schema {
  let current = node;
  for (let hops = 0; hops < 32; hops++) {
    if (typeof current !== 'object' || typeof current.$ref !== 'string' || !current.$ref.startsWith('#'))
      return current;
    let target: unknown = root;
    for (const token of current.$ref.slice(1).split('/').filter(Boolean)) {
      const key = decodeURIComponent(token).replaceAll('~1', '/').replaceAll('~0', '~');
      target =
        typeof target === 'object' && target !== null ? (target as Record<string, unknown>)[key] : undefined;
    }
    if (typeof target !== 'boolean' && (typeof target !== 'object' || target === null)) return current;
    current = target as Schema;
  }
  return current;
}

function asObject(schema: Schema): Record<string, unknown> | false {
  if (schema === true) return {};
  return schema;
}

function isSchemaObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objectOf(value: unknown): Record<string, unknown> {
  return isSchemaObject(value) ? value : {};
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function typesOf(schema: Record<string, unknown>): string[] | undefined {
  if (typeof schema.type === 'string') return [schema.type];
  if (Array.isArray(schema.type)) return strings(schema.type);
  return undefined;
}

function escape(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${stableStringify((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
