import { getOption, hasOption, ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { field_schema, message_schema } from '../gen/prism/common/v1/options_pb.js';
import { NamespaceListSchema, NamespaceRequestSchema } from '../gen/prism/config/v1/namespace_pb.js';
import { yamlEnumValues } from './enum-names.js';

/**
 * Builds the namespace JSON Schema (draft-07) from the protobuf descriptors of prism.config.v1 and
 * the schema hints in prism.common.v1 options. Nothing here is written by hand per field, so the
 * editor schema, the structural validator and the wire type cannot drift apart.
 */

type JsonSchema = Record<string, unknown>;

export const SCHEMA_DRAFT = 'http://json-schema.org/draft-07/schema#';

export function buildNamespaceSchema(): JsonSchema {
  const definitions: Record<string, JsonSchema> = {};
  const queue: DescMessage[] = [NamespaceRequestSchema, NamespaceListSchema];
  while (queue.length > 0) {
    const message = queue.shift() as DescMessage;
    if (definitions[message.name]) continue;
    definitions[message.name] = messageSchema(message, queue);
  }
  return {
    $schema: SCHEMA_DRAFT,
    title: 'Prism namespace',
    description: 'One Prism namespace, or a list of them under `namespaces:`',
    anyOf: [{ $ref: '#/definitions/NamespaceRequest' }, { $ref: '#/definitions/NamespaceList' }],
    definitions: Object.fromEntries(Object.entries(definitions).sort(([a], [b]) => a.localeCompare(b))),
  };
}

function messageSchema(message: DescMessage, queue: DescMessage[]): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const field of message.fields) {
    properties[field.name] = fieldSchema(field, queue);
    if (hasOption(field, field_schema) && getOption(field, field_schema).required) required.push(field.name);
  }
  const schema: JsonSchema = { type: 'object' };
  if (hasOption(message, message_schema)) schema.description = getOption(message, message_schema).description;
  schema.properties = properties;
  if (required.length > 0) schema.required = required;
  schema.additionalProperties = false;
  return schema;
}

function fieldSchema(field: DescField, queue: DescMessage[]): JsonSchema {
  const hints = hasOption(field, field_schema) ? getOption(field, field_schema) : undefined;
  let schema: JsonSchema;
  switch (field.fieldKind) {
    case 'scalar':
      schema = scalarSchema(field.scalar);
      break;
    case 'enum':
      schema = { type: 'string', enum: yamlEnumValues(field.enum) };
      break;
    case 'message':
      queue.push(field.message);
      schema = { $ref: `#/definitions/${field.message.name}` };
      break;
    case 'list': {
      let items: JsonSchema;
      if (field.listKind === 'scalar') items = scalarSchema(field.scalar);
      else if (field.listKind === 'enum') items = { type: 'string', enum: yamlEnumValues(field.enum) };
      else {
        queue.push(field.message);
        items = { $ref: `#/definitions/${field.message.name}` };
      }
      schema = { type: 'array', items };
      if (hints?.minItems !== undefined) schema.minItems = hints.minItems;
      break;
    }
    case 'map': {
      let values: JsonSchema;
      if (field.mapKind === 'scalar') values = scalarSchema(field.scalar);
      else if (field.mapKind === 'enum') values = { type: 'string', enum: yamlEnumValues(field.enum) };
      else {
        queue.push(field.message);
        values = { $ref: `#/definitions/${field.message.name}` };
      }
      schema = { type: 'object', additionalProperties: values };
      break;
    }
  }
  if (!hints) return schema;
  const annotated: JsonSchema = {};
  if (hints.description) annotated.description = hints.description;
  Object.assign(annotated, schema);
  if (hints.pattern) annotated.pattern = hints.pattern;
  if (hints.minimum !== undefined) annotated.minimum = Number(hints.minimum);
  if (hints.maximum !== undefined) annotated.maximum = Number(hints.maximum);
  if (hints.format) annotated['x-prism-format'] = hints.format;
  if (hints.required && annotated.type === 'string') annotated.minLength = 1;
  if (hints.example) annotated.examples = [hints.example];
  return annotated;
}

function scalarSchema(scalar: ScalarType): JsonSchema {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: 'string' };
    case ScalarType.BOOL:
      return { type: 'boolean' };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      // Bounded, so that an out-of-range number is a schema finding, not a failed proto decode.
      return { type: 'integer', minimum: 0, maximum: 4294967295 };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: 'integer', minimum: -2147483648, maximum: 2147483647 };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: 'integer', minimum: 0 };
    case ScalarType.BYTES:
      return { type: 'string', contentEncoding: 'base64' };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: 'number' };
    default:
      return { type: 'integer' };
  }
}

/** The schema as committed at schema/namespace.schema.json and printed by `namespace schema`. */
export function renderNamespaceSchema(): string {
  return JSON.stringify(buildNamespaceSchema(), null, 2) + '\n';
}
