import type { DescField, DescMessage } from '@bufbuild/protobuf';
import { protoEnumName, yamlEnumName } from './enum-names.js';
import { isPlainObject } from './yaml-loader.js';

/**
 * Converts between the YAML shape of a message (enum values spelled "best-effort") and protobuf
 * JSON ("DURABILITY_BEST_EFFORT"). Field names are the proto names in both shapes.
 */
export function yamlToProtoJson(value: unknown, desc: DescMessage): unknown {
  return convert(value, desc, (field, v) => (typeof v === 'string' ? (protoEnumName(field, v) ?? v) : v));
}

export function protoJsonToYaml(value: unknown, desc: DescMessage): unknown {
  return convert(value, desc, (field, v) => (typeof v === 'string' ? yamlEnumName(field, v) : v));
}

type EnumMapper = (desc: NonNullable<DescField['enum']>, value: unknown) => unknown;

function convert(value: unknown, desc: DescMessage, mapEnum: EnumMapper): unknown {
  if (!isPlainObject(value)) return value;
  const fields = fieldsByName(desc);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const field = fields.get(key);
    out[key] = field ? convertField(field, v, mapEnum) : v;
  }
  return out;
}

const FIELDS = new WeakMap<DescMessage, Map<string, DescField>>();
/** A message's fields by proto name and JSON name (looked up for every key of every file). */
function fieldsByName(desc: DescMessage): Map<string, DescField> {
  let fields = FIELDS.get(desc);
  if (!fields) {
    fields = new Map();
    // Last to first, so that a name two fields answer to (one's proto name, another's JSON name)
    // goes to the first of them, as a find() over the fields would.
    for (const f of [...desc.fields].reverse()) {
      fields.set(f.jsonName, f);
      fields.set(f.name, f);
    }
    FIELDS.set(desc, fields);
  }
  return fields;
}

function convertField(field: DescField, value: unknown, mapEnum: EnumMapper): unknown {
  switch (field.fieldKind) {
    case 'enum':
      return mapEnum(field.enum, value);
    case 'message':
      return convert(value, field.message, mapEnum);
    case 'list':
      if (!Array.isArray(value)) return value;
      if (field.listKind === 'enum') return value.map((v) => mapEnum(field.enum, v));
      if (field.listKind === 'message') return value.map((v) => convert(v, field.message, mapEnum));
      return value;
    case 'map':
      if (!isPlainObject(value) || field.mapKind !== 'message') return value;
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, convert(v, field.message, mapEnum)]),
      );
    default:
      return value;
  }
}
