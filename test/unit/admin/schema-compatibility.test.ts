/**
 * The registry's compatibility rules (docs/schemas.md, Compatibility modes): tables of schema pairs
 * with the expected verdict per mode, for Avro (avsc's resolution), JSON Schema (Prism's rules) and
 * protobuf (buf's WIRE rules, through the real buf CLI).
 */
import { describe, expect, it } from 'vitest';
import {
  compatibilityProblems,
  parseSchema,
  type ParsedSchema,
} from '../../../src/admin/schemas/compatibility.js';
import {
  COMPATIBILITY_MODES,
  type CompatibilityMode,
  type SchemaType,
} from '../../../src/admin/schemas/modes.js';
import { RegistryError } from '../../../src/admin/schemas/errors.js';

async function problems(
  type: SchemaType,
  mode: CompatibilityMode,
  history: unknown[],
  next: unknown,
): Promise<string[]> {
  const text = (s: unknown) => (typeof s === 'string' ? s : JSON.stringify(s));
  const versions: Array<{ version: number; schema: ParsedSchema }> = [];
  for (const [i, s] of history.entries())
    versions.push({ version: i + 1, schema: await parseSchema(type, text(s)) });
  return compatibilityProblems(mode, await parseSchema(type, text(next)), versions);
}

/** Verdicts per mode: true = compatible. */
type Verdicts = Partial<Record<CompatibilityMode, boolean>>;

const record = (fields: unknown[]) => ({ type: 'record', name: 'Order', namespace: 'shop', fields });
const id = { name: 'id', type: 'string' };

const avroCases: Array<{ name: string; old: unknown; next: unknown; verdicts: Verdicts }> = [
  {
    name: 'adding a field with a default',
    old: record([id]),
    next: record([id, { name: 'amount', type: 'int', default: 0 }]),
    verdicts: { BACKWARD: true, FORWARD: true, FULL: true, NONE: true },
  },
  {
    name: 'adding a field without a default',
    old: record([id]),
    next: record([id, { name: 'amount', type: 'int' }]),
    verdicts: { BACKWARD: false, FORWARD: true, FULL: false, NONE: true },
  },
  {
    name: 'removing a field without a default',
    old: record([id, { name: 'note', type: 'string' }]),
    next: record([id]),
    verdicts: { BACKWARD: true, FORWARD: false, FULL: false, NONE: true },
  },
  {
    name: 'promoting int to long',
    old: record([id, { name: 'amount', type: 'int' }]),
    next: record([id, { name: 'amount', type: 'long' }]),
    verdicts: { BACKWARD: true, FORWARD: false, FULL: false },
  },
  {
    name: 'changing string to int',
    old: record([id, { name: 'amount', type: 'string' }]),
    next: record([id, { name: 'amount', type: 'int' }]),
    verdicts: { BACKWARD: false, FORWARD: false, FULL: false, NONE: true },
  },
  {
    name: 'renaming the record',
    old: record([id]),
    next: { ...record([id]), name: 'Purchase' },
    verdicts: { BACKWARD: false, FORWARD: false },
  },
];

describe('Avro compatibility (avsc resolver)', () => {
  for (const c of avroCases)
    for (const [mode, compatible] of Object.entries(c.verdicts))
      it(`${c.name} is ${compatible ? 'compatible' : 'incompatible'} under ${mode}`, async () => {
        const found = await problems('AVRO', mode as CompatibilityMode, [c.old], c.next);
        expect(found.length === 0).toBe(compatible);
      });

  it('reports avsc’s reason with the version and direction', async () => {
    expect(
      await problems('AVRO', 'BACKWARD', [record([id])], record([id, { name: 'amount', type: 'int' }])),
    ).toEqual([
      'version 1 (BACKWARD, new schema reads old data): Avro: no matching field for default-less shop.Order.amount',
    ]);
  });

  it('checks every version under BACKWARD_TRANSITIVE but only the latest under BACKWARD', async () => {
    const v1 = record([{ name: 'a', type: 'string' }]);
    const v2 = record([
      { name: 'a', type: 'string' },
      { name: 'b', type: 'int', default: 0 },
    ]);
    const v3 = record([{ name: 'b', type: 'int' }]);
    expect(await problems('AVRO', 'BACKWARD', [v1, v2], v3)).toEqual([]);
    expect(await problems('AVRO', 'BACKWARD_TRANSITIVE', [v1, v2], v3)).toEqual([
      'version 1 (BACKWARD, new schema reads old data): Avro: no matching field for default-less shop.Order.b',
    ]);
    expect(await problems('AVRO', 'FULL_TRANSITIVE', [v1, v2], v3)).toEqual([
      'version 1 (BACKWARD, new schema reads old data): Avro: no matching field for default-less shop.Order.b',
      'version 1 (FORWARD, old schema reads new data): Avro: no matching field for default-less shop.Order.a',
      'version 2 (FORWARD, old schema reads new data): Avro: no matching field for default-less shop.Order.a',
    ]);
  });

  it('refuses a schema that does not parse with 42201 and avsc’s message', async () => {
    const err = await parseSchema(
      'AVRO',
      JSON.stringify({ type: 'record', name: 'X', fields: [{ name: 'a', type: 'nope' }] }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).errorCode).toBe(42201);
    expect((err as RegistryError).message).toBe('Invalid schema: Avro: undefined type name: nope');
  });
});

const object = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  type: 'object',
  properties,
  ...extra,
});

const jsonCases: Array<{
  name: string;
  old: unknown;
  next: unknown;
  verdicts: Verdicts;
  backward?: string[];
}> = [
  {
    name: 'adding an optional property',
    old: object({ id: { type: 'string' } }),
    next: object({ id: { type: 'string' }, note: { type: 'string' } }),
    verdicts: { BACKWARD: true, FORWARD: true, FULL: true },
  },
  {
    name: 'widening integer to number',
    old: object({ amount: { type: 'integer' } }),
    next: object({ amount: { type: 'number' } }),
    verdicts: { BACKWARD: true, FORWARD: false, FULL: false, NONE: true },
  },
  {
    name: 'changing a property’s type',
    old: object({ amount: { type: 'number' } }),
    next: object({ amount: { type: 'string' } }),
    verdicts: { BACKWARD: false, FORWARD: false },
    backward: ['#/properties/amount: type narrowed: the writer allows number, the reader only string'],
  },
  {
    name: 'making a property required',
    old: object({ id: { type: 'string' } }),
    next: object({ id: { type: 'string' } }, { required: ['id'] }),
    verdicts: { BACKWARD: false, FORWARD: true },
    backward: ["#: property 'id' became required"],
  },
  {
    name: 'removing a property from a closed model',
    old: object({ id: { type: 'string' }, note: { type: 'string' } }, { additionalProperties: false }),
    next: object({ id: { type: 'string' } }, { additionalProperties: false }),
    verdicts: { BACKWARD: false, FORWARD: true },
    backward: ["#: property 'note' removed from a closed model (additionalProperties: false)"],
  },
  {
    name: 'removing a property from an open model',
    old: object({ id: { type: 'string' }, note: { type: 'string' } }),
    next: object({ id: { type: 'string' } }),
    verdicts: { BACKWARD: true, FORWARD: true, FULL: true },
  },
  {
    name: 'closing additionalProperties',
    old: object({ id: { type: 'string' } }),
    next: object({ id: { type: 'string' } }, { additionalProperties: false }),
    verdicts: { BACKWARD: false, FORWARD: true },
    backward: ['#: additionalProperties closed (false) where the writer allowed more properties'],
  },
  {
    name: 'removing an enum value',
    old: object({ state: { enum: ['new', 'paid', 'shipped'] } }),
    next: object({ state: { enum: ['new', 'paid'] } }),
    verdicts: { BACKWARD: false, FORWARD: true, FULL: false },
    backward: ['#/properties/state: enum value "shipped" removed'],
  },
  {
    name: 'adding an enum value',
    old: object({ state: { enum: ['new', 'paid'] } }),
    next: object({ state: { enum: ['new', 'paid', 'shipped'] } }),
    verdicts: { BACKWARD: true, FORWARD: false },
  },
  {
    name: 'tightening maxLength',
    old: object({ id: { type: 'string', maxLength: 64 } }),
    next: object({ id: { type: 'string', maxLength: 32 } }),
    verdicts: { BACKWARD: false, FORWARD: true },
    backward: ['#/properties/id: constraint tightened: maxLength 64 → 32'],
  },
  {
    name: 'changing a pattern (not analysed)',
    old: object({ id: { type: 'string', pattern: '^a' } }),
    next: object({ id: { type: 'string', pattern: '^b' } }),
    verdicts: { BACKWARD: false, FORWARD: false, NONE: true },
    backward: ['#/properties/id: pattern changed (not analysed; use mode NONE to allow it)'],
  },
  {
    name: 'changing the item type of an array',
    old: object({ tags: { type: 'array', items: { type: 'string' } } }),
    next: object({ tags: { type: 'array', items: { type: 'integer' } } }),
    verdicts: { BACKWARD: false, FORWARD: false },
    backward: ['#/properties/tags/items: type narrowed: the writer allows string, the reader only integer'],
  },
  {
    name: 'changing a type behind a local $ref',
    old: { $defs: { money: { type: 'number' } }, ...object({ amount: { $ref: '#/$defs/money' } }) },
    next: { $defs: { money: { type: 'integer' } }, ...object({ amount: { $ref: '#/$defs/money' } }) },
    verdicts: { BACKWARD: false, FORWARD: true },
    backward: ['#/properties/amount: type narrowed: the writer allows number, the reader only integer'],
  },
];

describe('JSON Schema compatibility (Prism’s documented rules)', () => {
  for (const c of jsonCases) {
    for (const [mode, compatible] of Object.entries(c.verdicts))
      it(`${c.name} is ${compatible ? 'compatible' : 'incompatible'} under ${mode}`, async () => {
        const found = await problems('JSON', mode as CompatibilityMode, [c.old], c.next);
        expect(found.length === 0).toBe(compatible);
      });
    if (c.backward)
      it(`${c.name} is reported by its JSON pointer`, async () => {
        expect(await problems('JSON', 'BACKWARD', [c.old], c.next)).toEqual(
          c.backward!.map((p) => `version 1 (BACKWARD, new schema reads old data): ${p}`),
        );
      });
  }

  it('checks every version under FORWARD_TRANSITIVE but only the latest under FORWARD', async () => {
    const v1 = object({ state: { enum: ['new'] } });
    const v2 = object({ state: { enum: ['new', 'paid'] } });
    const v3 = object({ state: { enum: ['new', 'paid'] } }, { description: 'same values as v2' });
    expect(await problems('JSON', 'FORWARD', [v1, v2], v3)).toEqual([]);
    expect(await problems('JSON', 'FORWARD_TRANSITIVE', [v1, v2], v3)).toEqual([
      'version 1 (FORWARD, old schema reads new data): #/properties/state: enum value "paid" removed',
    ]);
  });

  it('refuses a JSON Schema that ajv cannot compile with 42201', async () => {
    const err = (await parseSchema('JSON', '{"type": 12}').catch((e: unknown) => e)) as RegistryError;
    expect(err.errorCode).toBe(42201);
    expect(err.message).toMatch(
      /^Invalid schema: JSON Schema: schema is invalid: data\/type must be equal to one of the allowed values/,
    );
  });
});

const proto = (body: string) => `syntax = "proto3";\npackage shop;\n${body}\n`;

describe('protobuf compatibility (buf breaking, WIRE rules)', () => {
  const v1 = proto('message Order {\n  string id = 1;\n  int64 amount = 2;\n}');

  it('accepts an added field under every mode', async () => {
    const next = proto('message Order {\n  string id = 1;\n  int64 amount = 2;\n  string note = 3;\n}');
    for (const mode of COMPATIBILITY_MODES) expect(await problems('PROTOBUF', mode, [v1], next)).toEqual([]);
  });

  it('refuses a field type change with buf’s rule and the line and column', async () => {
    const next = proto('message Order {\n  string id = 1;\n  string amount = 2;\n}');
    expect(await problems('PROTOBUF', 'BACKWARD', [v1], next)).toEqual([
      'version 1: schema.proto:5:3: FIELD_WIRE_COMPATIBLE_TYPE: Field "2" with name "amount" on message "Order" changed type from "int64" to "string". See https://developers.google.com/protocol-buffers/docs/proto3#updating for wire compatibility rules.',
    ]);
    expect(await problems('PROTOBUF', 'NONE', [v1], next)).toEqual([]);
  });

  it('takes a base64 FileDescriptorSet as well as .proto text', async () => {
    const compiled = await parseSchema('PROTOBUF', v1);
    if (compiled.type !== 'PROTOBUF') throw new Error('expected protobuf');
    const base64 = Buffer.from(compiled.proto.image).toString('base64');
    const next = proto('message Order {\n  string id = 1;\n  double amount = 2;\n}');
    const found = await problems('PROTOBUF', 'FULL', [base64], next);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain('FIELD_WIRE_COMPATIBLE_TYPE');
  });

  it('refuses .proto text that does not compile with 42201 naming the line and column', async () => {
    const err = (await parseSchema('PROTOBUF', proto('message Order {\n  strin id = 1;\n}')).catch(
      (e: unknown) => e,
    )) as RegistryError;
    expect(err.errorCode).toBe(42201);
    expect(err.message).toBe('Invalid schema: protobuf: schema.proto:4:3: cannot find `strin` in this scope');
  });
});
