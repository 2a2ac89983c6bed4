/**
 * The schema stage's payload validators (docs/schemas.md, Enforcement): a matching payload passes,
 * a bad one is named by its field path. Protobuf schemas are compiled by the admin's buf step,
 * as the proxy receives them.
 */
import { create, createFileRegistry, fromBinary, toBinary, type DescMessage } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import avro from 'avsc';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseProtobuf } from '../../../src/admin/schemas/protobuf.js';
import type { RegisteredSchema, SchemaType } from '../../../src/runners/payload/schema-source.js';
import { compileValidator, type PayloadValidator } from '../../../src/runners/payload/schema-validators.js';

const registered = (
  schemaType: SchemaType,
  schema: string,
  descriptorSet?: Uint8Array,
): RegisteredSchema => ({
  subject: 'orders.events-value',
  id: 1,
  version: 1,
  schemaType,
  schema,
  ...(descriptorSet ? { descriptorSet } : {}),
});
const text = (s: string) => new TextEncoder().encode(s);

describe('JSON Schema payloads', () => {
  const validate = compileValidator(
    registered(
      'JSON',
      JSON.stringify({
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: {
          items: {
            type: 'array',
            items: { type: 'object', properties: { sku: { type: 'string' } }, required: ['sku'] },
          },
          placed: { type: 'string', format: 'date-time' },
        },
      }),
    ),
  );

  it('accepts a matching document', () => {
    expect(validate(text('{"items":[{"sku":"a-1"}],"placed":"2026-12-03T10:00:00Z"}'))).toBeUndefined();
  });

  it('names array elements and missing properties in the path', () => {
    expect(validate(text('{"items":[{"sku":"a"},{"sku":7}]}'))).toBe('items[1].sku: must be string');
    expect(validate(text('{"items":[{}]}'))).toBe('items[0].sku: is required');
  });

  it('checks formats (ajv-formats)', () => {
    expect(validate(text('{"placed":"yesterday"}'))).toBe('placed: must match format "date-time"');
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(validate(new Uint8Array([0x22, 0xff, 0x22]))).toMatch(/^\(root\): payload is not UTF-8 JSON/);
  });
});

describe('Avro payloads', () => {
  const schema = {
    type: 'record',
    name: 'Order',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'state', type: { type: 'enum', name: 'State', symbols: ['NEW', 'PAID'] } },
      { name: 'note', type: ['null', 'string'], default: null },
    ],
  };
  const type = avro.Type.forSchema(schema as avro.Schema);
  const validate = compileValidator(registered('AVRO', JSON.stringify(schema)));

  it('accepts a datum written with the schema', () => {
    expect(validate(type.toBuffer({ id: 'o-1', state: 'PAID', note: 'gift' }))).toBeUndefined();
  });

  it('names the field of an enum index out of range', () => {
    // id "o", then enum index 5 (zig-zag 10), then union branch 0 (null).
    expect(validate(new Uint8Array([0x02, 0x6f, 0x0a, 0x00]))).toBe('state: invalid State enum index: 5');
  });

  it('names the field of an invalid union branch', () => {
    expect(validate(new Uint8Array([0x02, 0x6f, 0x02, 0x08]))).toBe('note: invalid union index: 4');
  });
});

describe('protobuf payloads', () => {
  let Order: DescMessage;
  let validate: PayloadValidator;

  beforeAll(async () => {
    const { image } = await parseProtobuf(`syntax = "proto3";
package shop;
message Order {
  string id = 1;
  repeated Line lines = 2;
  map<string, Line> by_sku = 3;
  repeated int32 flags = 4;
}
message Line {
  string sku = 1;
  uint32 quantity = 2;
}
`);
    Order = createFileRegistry(fromBinary(FileDescriptorSetSchema, image)).getMessage('shop.Order')!;
    validate = compileValidator(registered('PROTOBUF', '', image));
  }, 30_000);

  it('accepts the binary encoding of the first message, maps and packed lists included', () => {
    const order = create(Order, {
      id: 'o-1',
      lines: [{ sku: 'a', quantity: 2 }],
      bySku: { a: { sku: 'a', quantity: 2 } },
      flags: [1, 2, 3],
    } as never);
    expect(validate(toBinary(Order, order))).toBeUndefined();
  });

  it('names a nested field with the wrong wire type', () => {
    // lines[0] { quantity: "x" as length-delimited }
    expect(validate(new Uint8Array([0x12, 0x03, 0x12, 0x01, 0x78]))).toBe(
      'lines.quantity: wire type LengthDelimited does not fit a uint32 field',
    );
  });

  it('names a map value with the wrong wire type, and a string that is not UTF-8 inside one', () => {
    // by_sku { key: "a", value: { sku: 0xff } }
    expect(validate(new Uint8Array([0x1a, 0x05, 0x0a, 0x01, 0x61, 0x10, 0x05]))).toBe(
      'by_sku{}: wire type Varint does not fit a message value',
    );
    expect(validate(new Uint8Array([0x1a, 0x08, 0x0a, 0x01, 0x61, 0x12, 0x03, 0x0a, 0x01, 0xff]))).toBe(
      'by_sku{}.sku: string is not valid UTF-8',
    );
  });

  it('refuses truncated data and undeclared field numbers', () => {
    expect(validate(new Uint8Array([0x0a, 0x05, 0x61]))).toBe('id: premature EOF');
    expect(validate(new Uint8Array([0x12, 0x03, 0x0a, 0x05, 0x61]))).toBe('lines.sku: premature EOF');
    expect(validate(new Uint8Array([0x28, 0x01]))).toBe(
      '(root): field number 5 is not declared in shop.Order',
    );
  });
});
