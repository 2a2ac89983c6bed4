/**
 * Payload validators for the schema stage, one per schema type (docs/schemas.md, Enforcement).
 * Each returns undefined for a payload that matches, else the problem, starting with the field
 * path ("customer.email: must match format \"email\""; "(root)" for the payload as a whole).
 *
 * - JSON: the payload is UTF-8 JSON checked with ajv (ajv-formats for `format`).
 * - AVRO: the payload is Avro binary (the single datum, no container or Confluent prefix), read
 *   field by field with avsc; trailing bytes are refused.
 * - PROTOBUF: the payload is the binary encoding of the schema's first message (of the file
 *   `schema.proto` when the schema was registered as text, else of the set's last file), walked
 *   with protobuf-es's reader: a field number the message does not declare, a wrong wire type,
 *   truncated data or a string that is not UTF-8 is refused.
 */
import {
  createFileRegistry,
  fromBinary,
  ScalarType,
  type DescField,
  type DescMessage,
} from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { Ajv, type ErrorObject } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import avro from 'avsc';
import type { RegisteredSchema } from './schema-source.js';

export type PayloadValidator = (payload: Uint8Array) => string | undefined;

const ROOT = '(root)';
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function compileValidator(schema: RegisteredSchema): PayloadValidator {
  switch (schema.schemaType) {
    case 'JSON':
      return jsonValidator(schema.schema);
    case 'AVRO':
      return avroValidator(schema.schema);
    case 'PROTOBUF':
      if (!schema.descriptorSet)
        throw new Error(`protobuf schema ${schema.id} came without its descriptor set`);
      return protobufValidator(schema.descriptorSet);
  }
}

// -- JSON Schema ------------------------------------------------------------------------------------

// ajv-formats is CommonJS: under NodeNext its default import is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

function jsonValidator(text: string): PayloadValidator {
  const schema = JSON.parse(text) as boolean | { $schema?: unknown };
  const dialect = typeof schema === 'object' && typeof schema.$schema === 'string' ? schema.$schema : '';
  const options = { strict: false, allErrors: false };
  const ajv = dialect.includes('2020-12')
    ? new Ajv2020(options)
    : dialect.includes('2019-09')
      ? new Ajv2019(options)
      : new Ajv(options);
  // Ajv2019/Ajv2020 extend Ajv's core, which is what the plugin needs.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
  addFormats(ajv as Ajv);
  const validate = ajv.compile(schema as boolean | Record<string, unknown>);
  return (payload) => {
    let value: unknown;
    try {
      value = JSON.parse(utf8.decode(payload));
    } catch (err) {
      return `${ROOT}: payload is not UTF-8 JSON (${(err as Error).message})`;
    }
    if (validate(value)) return undefined;
    const error = validate.errors?.[0];
    return error ? describeAjvError(error) : `${ROOT}: does not match the schema`;
  };
}

function describeAjvError(error: ErrorObject): string {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  let message = error.message ?? 'is invalid';
  if (error.keyword === 'required' && params.missingProperty !== undefined) {
    segments.push(params.missingProperty);
    message = 'is required';
  } else if (error.keyword === 'additionalProperties' && params.additionalProperty !== undefined) {
    segments.push(params.additionalProperty);
    message = 'is not allowed (additionalProperties)';
  }
  return `${fieldPath(segments)}: ${message}`;
}

/** `["items", "0", "sku"]` → `items[0].sku`. */
function fieldPath(segments: readonly string[]): string {
  if (segments.length === 0) return ROOT;
  return segments.reduce(
    (path, s) => (/^[0-9]+$/.test(s) ? `${path}[${s}]` : path === '' ? s : `${path}.${s}`),
    '',
  );
}

// -- Avro -----------------------------------------------------------------------------------------

function avroValidator(text: string): PayloadValidator {
  const type = avro.Type.forSchema(JSON.parse(text) as avro.Schema);
  return (payload) => {
    const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const read = readAvro(type, buf, 0, []);
    if (typeof read === 'string') return read;
    if (read !== buf.length)
      return `${ROOT}: ${buf.length - read} bytes left after the ${type.name ?? type.typeName} datum`;
    return undefined;
  };
}

/** The offset after the datum at `pos`, or the problem. Records are read field by field for the path. */
function readAvro(type: avro.Type, buf: Buffer, pos: number, path: string[]): number | string {
  if (type instanceof avro.types.RecordType) {
    let offset = pos;
    for (const field of type.fields) {
      const read = readAvro(field.type, buf, offset, [...path, field.name]);
      if (typeof read === 'string') return read;
      offset = read;
    }
    return offset;
  }
  const at = fieldPath(path);
  try {
    const { value, offset } = type.decode(buf, pos) as { value: unknown; offset: number };
    if (offset < 0) return `${at}: the payload ends inside this ${type.typeName} value`;
    if (!type.isValid(value)) return `${at}: not a valid ${type.typeName} value`;
    return offset;
  } catch (err) {
    return `${at}: ${(err as Error).message}`;
  }
}

// -- Protobuf -------------------------------------------------------------------------------------

/** The schema's file: `schema.proto` (text compiled by the admin), else the set's last file. */
const PROTO_FILE = 'schema.proto';

function protobufValidator(descriptorSet: Uint8Array): PayloadValidator {
  const set = fromBinary(FileDescriptorSetSchema, descriptorSet);
  const registry = createFileRegistry(set);
  const files = [...registry.files];
  const file = files.find((f) => f.proto.name === PROTO_FILE) ?? files.at(-1);
  const message = file?.messages[0];
  if (!message) throw new Error('the protobuf schema declares no message');
  return (payload) => walkMessage(message, payload, []);
}

function scalarWireType(type: ScalarType): WireType {
  switch (type) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WireType.LengthDelimited;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WireType.Bit32;
    default:
      return WireType.Varint;
  }
}

/** The wire types a field accepts (repeated numbers: packed or not). */
function acceptedWireTypes(field: DescField): WireType[] {
  switch (field.fieldKind) {
    case 'message':
    case 'map':
      return [WireType.LengthDelimited];
    case 'enum':
      return [WireType.Varint];
    case 'scalar':
      return [scalarWireType(field.scalar)];
    case 'list':
      if (field.listKind === 'message') return [WireType.LengthDelimited];
      if (field.listKind === 'enum') return [WireType.Varint, WireType.LengthDelimited];
      return field.scalar === ScalarType.STRING || field.scalar === ScalarType.BYTES
        ? [WireType.LengthDelimited]
        : [scalarWireType(field.scalar), WireType.LengthDelimited];
  }
}

const MAX_DEPTH = 64;

/** How one field is read: the wire types it accepts (a bit per type) and what to check. */
interface FieldPlan {
  readonly field: DescField;
  readonly wireTypes: number;
  readonly kind: 'message' | 'map' | 'string' | 'other';
  readonly message?: DescMessage;
}

/** Plans per message type, built once: the walk runs for every payload published. */
const plans = new WeakMap<DescMessage, Map<number, FieldPlan>>();

function planOf(desc: DescMessage): Map<number, FieldPlan> {
  let plan = plans.get(desc);
  if (plan) return plan;
  plan = new Map();
  for (const field of desc.fields) {
    const wireTypes = acceptedWireTypes(field).reduce((bits, w) => bits | (1 << w), 0);
    const message =
      field.fieldKind === 'message' || (field.fieldKind === 'list' && field.listKind === 'message')
        ? field.message
        : undefined;
    const isString =
      (field.fieldKind === 'scalar' || (field.fieldKind === 'list' && field.listKind === 'scalar')) &&
      field.scalar === ScalarType.STRING;
    const kind = message ? 'message' : field.fieldKind === 'map' ? 'map' : isString ? 'string' : 'other';
    plan.set(field.number, { field, wireTypes, kind, ...(message ? { message } : {}) });
  }
  plans.set(desc, plan);
  return plan;
}

/** The problem with `bytes` as a `desc` message, or undefined; path strings are built only for a problem. */
function walkMessage(desc: DescMessage, bytes: Uint8Array, path: readonly string[]): string | undefined {
  if (path.length > MAX_DEPTH) return `${fieldPath(path)}: nested deeper than ${MAX_DEPTH} messages`;
  const plan = planOf(desc);
  const reader = new BinaryReader(bytes);
  let current: FieldPlan | undefined;
  try {
    while (reader.pos < reader.len) {
      current = undefined;
      const [number, wireType] = reader.tag();
      const field = plan.get(number);
      if (!field) return `${fieldPath(path)}: field number ${number} is not declared in ${desc.typeName}`;
      current = field;
      if ((field.wireTypes & (1 << wireType)) === 0)
        return `${fieldPath([...path, field.field.name])}: wire type ${WireType[wireType]} does not fit a ${fieldKindName(field.field)} field`;
      let problem: string | undefined;
      switch (field.kind) {
        case 'message':
          problem = walkMessage(field.message!, reader.bytes(), [...path, field.field.name]);
          break;
        case 'map':
          problem = walkMapEntry(field.field as DescField & { fieldKind: 'map' }, reader.bytes(), [
            ...path,
            field.field.name,
          ]);
          break;
        case 'string': {
          const text = reader.bytes();
          try {
            utf8.decode(text);
          } catch {
            problem = `${fieldPath([...path, field.field.name])}: string is not valid UTF-8`;
          }
          break;
        }
        default:
          reader.skip(wireType, number);
      }
      if (problem !== undefined) return problem;
    }
    return undefined;
  } catch (err) {
    return `${fieldPath(current ? [...path, current.field.name] : path)}: ${(err as Error).message}`;
  }
}

/** A map entry is a message of key = 1 and value = 2; message values are walked as messages. */
function walkMapEntry(
  field: DescField & { fieldKind: 'map' },
  bytes: Uint8Array,
  at: readonly string[],
): string | undefined {
  const reader = new BinaryReader(bytes);
  const entryAt = [...at.slice(0, -1), `${at.at(-1) ?? ''}{}`];
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    if (number === 2 && field.mapKind === 'message') {
      if (wireType !== WireType.LengthDelimited)
        return `${fieldPath(entryAt)}: wire type ${WireType[wireType]} does not fit a message value`;
      const problem = walkMessage(field.message, reader.bytes(), entryAt);
      if (problem !== undefined) return problem;
    } else if (number === 1 || number === 2) {
      reader.skip(wireType, number);
    } else {
      return `${fieldPath(entryAt)}: field number ${number} is not part of a map entry`;
    }
  }
  return undefined;
}

function fieldKindName(field: DescField): string {
  switch (field.fieldKind) {
    case 'scalar':
      return ScalarType[field.scalar].toLowerCase();
    case 'list':
      return `repeated ${field.listKind === 'scalar' ? ScalarType[field.scalar].toLowerCase() : field.listKind}`;
    default:
      return field.fieldKind;
  }
}
