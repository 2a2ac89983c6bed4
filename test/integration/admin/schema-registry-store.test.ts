/**
 * The schema registry over both admin stores: the same cases run on SQLite (a file in a temp dir)
 * and PostgreSQL (a fresh random schema, dropped afterwards; a failure under
 * PRISM_REQUIRE_SERVICES=1 when the server is absent). docs/schemas.md is the contract.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../../src/admin/open-store.js';
import { RegistryError } from '../../../src/admin/schemas/errors.js';
import { SchemaRegistry } from '../../../src/admin/schemas/registry.js';
import type { NamespaceStore } from '../../../src/admin/store.js';
import {
  connectPostgres,
  describeWithService,
  postgresUrl,
  type ServiceName,
} from '../../support/services.js';

interface Location {
  open(): Promise<NamespaceStore>;
  dispose(): Promise<void>;
}

const backends: Array<{ name: string; service?: ServiceName; location(): Location }> = [
  {
    name: 'SQLite',
    location() {
      const dir = mkdtempSync(join(tmpdir(), 'prism-schemas-'));
      return {
        open: () => openStore(join(dir, 'admin.db')),
        dispose: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'PostgreSQL',
    service: 'postgres',
    location() {
      const schema = `prism_schemas_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
      return {
        open: () => openStore(postgresUrl(), { schema }),
        dispose: async () => {
          const client = await connectPostgres();
          try {
            await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          } finally {
            await client.end();
          }
        },
      };
    },
  },
];

const avro = (fields: unknown[]) => ({
  schema: JSON.stringify({ type: 'record', name: 'Order', namespace: 'shop', fields }),
});
const id = { name: 'id', type: 'string' };
const v1 = avro([id]);
const v2 = avro([id, { name: 'amount', type: 'int', default: 0 }]);
const breaking = avro([id, { name: 'amount', type: 'string' }]);
const json = (schema: unknown) => ({ schema: JSON.stringify(schema), schemaType: 'JSON' });

async function rejection(promise: Promise<unknown>): Promise<RegistryError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof RegistryError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

async function applyNamespace(store: NamespaceStore, name: string): Promise<void> {
  await store.put(
    {
      name,
      team: 'commerce',
      version: 1,
      declaration: { namespace: name, team: 'commerce' },
      assignment: { namespace: name, version: 1 },
      contentHash: `sha256-${name}`,
      updatedAtMs: 1_700_000_000_000,
      updatedBy: 'alice',
    },
    0,
    {
      namespace: name,
      action: 'create',
      principal: 'alice',
      atMs: 1_700_000_000_000,
      versionBefore: 0,
      versionAfter: 1,
      diff: '',
      source: 'test',
    },
  );
}

for (const backend of backends) {
  const suite = () => {
    let location: Location | undefined;
    const opened: NamespaceStore[] = [];

    async function registryOn(): Promise<{ registry: SchemaRegistry; store: NamespaceStore }> {
      location ??= backend.location();
      const store = await location.open();
      opened.push(store);
      const registry = new SchemaRegistry({
        store: store.schemaStore(),
        namespaceExists: async (name) => (await store.get(name)) !== undefined,
        now: () => 1_800_000_000_000,
      });
      await registry.migrate();
      return { registry, store };
    }

    async function ready(): Promise<{ registry: SchemaRegistry; store: NamespaceStore }> {
      const opened = await registryOn();
      await applyNamespace(opened.store, 'orders');
      await applyNamespace(opened.store, 'billing');
      return opened;
    }

    afterEach(async () => {
      for (const store of opened.splice(0).reverse()) await store.close();
      await location?.dispose();
      location = undefined;
    });

    it('numbers versions per subject and reads them back by number, latest and id', async () => {
      const { registry } = await ready();
      const first = await registry.register('orders.events-value', v1, 'alice');
      const second = await registry.register('orders.events-value', v2, 'bob');
      expect([first.version, second.version]).toEqual([1, 2]);
      expect(second.id).not.toBe(first.id);
      expect(await registry.versionNumbers('orders.events-value')).toEqual([1, 2]);
      expect(await registry.version('orders.events-value', 'latest')).toEqual({
        subject: 'orders.events-value',
        id: second.id,
        version: 2,
        schemaType: 'AVRO',
        schema: v2.schema,
      });
      expect(await registry.schemaById(first.id)).toEqual({
        id: first.id,
        schemaType: 'AVRO',
        schema: v1.schema,
      });
      expect(await registry.subjects()).toEqual(['orders.events-value']);
    });

    it('gives one global id to the same schema in two subjects, and re-registering returns the existing version', async () => {
      const { registry } = await ready();
      const a = await registry.register('orders.events-value', v1, 'alice');
      const relaid = { schema: JSON.stringify(JSON.parse(v1.schema), null, 2) };
      const again = await registry.register('orders.events-value', relaid, 'alice');
      expect(again).toMatchObject({ id: a.id, version: 1, created: false });
      const b = await registry.register('billing.invoices-value', v1, 'carol');
      expect(b).toMatchObject({ id: a.id, version: 1, created: true });
      expect(await registry.usesOf(a.id)).toEqual([
        { subject: 'billing.invoices-value', version: 1 },
        { subject: 'orders.events-value', version: 1 },
      ]);
    });

    it('refuses a BACKWARD-breaking schema with 40901 and what broke, and stores nothing', async () => {
      const { registry } = await ready();
      await registry.register('orders.events-value', v2, 'alice');
      const err = await rejection(registry.register('orders.events-value', breaking, 'alice'));
      expect(err.errorCode).toBe(40901);
      expect(err.messages).toEqual([
        'version 1 (BACKWARD, new schema reads old data): Avro: cannot read "int" as "string"',
      ]);
      expect(await registry.versionNumbers('orders.events-value')).toEqual([1]);
    });

    it('applies the subject’s mode over the global one, and NONE accepts anything', async () => {
      const { registry } = await ready();
      await registry.register('orders.events-value', v2, 'alice');
      await registry.setMode('', 'FULL_TRANSITIVE', 'alice');
      expect(await registry.effectiveMode('orders.events-value')).toBe('FULL_TRANSITIVE');
      await registry.setMode('orders.events-value', 'NONE', 'alice');
      expect(await registry.mode('orders.events-value')).toBe('NONE');
      expect((await registry.register('orders.events-value', breaking, 'alice')).version).toBe(2);
      expect(await registry.deleteMode('orders.events-value', 'alice')).toBe('NONE');
      expect(await registry.mode('orders.events-value')).toBeUndefined();
      expect((await rejection(registry.deleteMode('orders.events-value', 'alice'))).errorCode).toBe(40408);
      expect((await rejection(registry.setMode('orders.events-value', 'SIDEWAYS', 'alice'))).errorCode).toBe(
        42203,
      );
    });

    it('checks JSON Schema evolution by the documented rules', async () => {
      const { registry } = await ready();
      const open = { type: 'object', properties: { id: { type: 'string' } } };
      await registry.register('orders.events-value', json(open), 'alice');
      expect(
        await registry.checkCompatibility(
          'orders.events-value',
          'latest',
          json({ ...open, required: ['id'] }),
        ),
      ).toEqual({
        isCompatible: false,
        messages: ["version 1 (BACKWARD, new schema reads old data): #: property 'id' became required"],
      });
      const wider = { ...open, properties: { ...open.properties, note: { type: 'string' } } };
      expect(await registry.checkCompatibility('orders.events-value', 1, json(wider))).toEqual({
        isCompatible: true,
        messages: [],
      });
    });

    it('keeps protobuf versions and refuses a wire-breaking change with buf’s rule', async () => {
      const { registry } = await ready();
      const proto = (amount: string) =>
        `syntax = "proto3";\npackage shop;\nmessage Order {\n  string id = 1;\n  ${amount} amount = 2;\n}\n`;
      const first = await registry.register(
        'orders.events-value',
        { schema: proto('int64'), schemaType: 'PROTOBUF' },
        'alice',
      );
      expect(await registry.version('orders.events-value', 1)).toMatchObject({
        id: first.id,
        schemaType: 'PROTOBUF',
      });
      const err = await rejection(
        registry.register(
          'orders.events-value',
          { schema: proto('string'), schemaType: 'PROTOBUF' },
          'alice',
        ),
      );
      expect(err.errorCode).toBe(40901);
      expect(err.messages).toEqual([
        'version 1: schema.proto:5:3: FIELD_WIRE_COMPATIBLE_TYPE: Field "2" with name "amount" on message "Order" changed type from "int64" to "string". See https://developers.google.com/protocol-buffers/docs/proto3#updating for wire compatibility rules.',
      ]);
    });

    it('soft-deletes versions (still readable by id), then deletes them permanently', async () => {
      const { registry } = await ready();
      const first = await registry.register('orders.events-value', v1, 'alice');
      await registry.register('orders.events-value', v2, 'alice');
      expect(await registry.deleteVersion('orders.events-value', 2, false, 'alice')).toBe(2);
      expect(await registry.versionNumbers('orders.events-value')).toEqual([1]);
      expect(await registry.versionNumbers('orders.events-value', true)).toEqual([1, 2]);
      expect(
        (await rejection(registry.deleteVersion('orders.events-value', 2, false, 'alice'))).errorCode,
      ).toBe(40406);
      expect(
        (await rejection(registry.deleteVersion('orders.events-value', 1, true, 'alice'))).errorCode,
      ).toBe(40407);
      // A new version after a soft delete continues the numbering.
      expect(
        (
          await registry.register(
            'orders.events-value',
            avro([id, { name: 'n', type: 'long', default: 0 }]),
            'alice',
          )
        ).version,
      ).toBe(3);

      expect((await rejection(registry.deleteSubject('orders.events-value', true, 'alice'))).errorCode).toBe(
        40405,
      );
      expect(await registry.deleteSubject('orders.events-value', false, 'alice')).toEqual([1, 3]);
      expect(await registry.subjects()).toEqual([]);
      expect(await registry.subjects(true)).toEqual(['orders.events-value']);
      expect((await rejection(registry.deleteSubject('orders.events-value', false, 'alice'))).errorCode).toBe(
        40404,
      );
      expect((await registry.schemaById(first.id)).schema).toBe(v1.schema);
      expect(await registry.deleteSubject('orders.events-value', true, 'alice')).toEqual([1, 2, 3]);
      expect((await rejection(registry.versionNumbers('orders.events-value', true))).errorCode).toBe(40401);
    });

    it('writes every register, delete and mode change to the namespace’s audit log', async () => {
      const { registry, store } = await ready();
      const { id: schemaId } = await registry.register('orders.events-value', v1, 'alice');
      await registry.setMode('orders.events-value', 'FULL', 'bob');
      await registry.deleteVersion('orders.events-value', 1, false, 'carol');
      const entries = (await store.history('orders')).filter((e) => e.source.startsWith('schema-registry'));
      expect(
        entries.map(({ action, principal, versionBefore, versionAfter, diff, source }) => ({
          action,
          principal,
          versionBefore,
          versionAfter,
          diff,
          source,
        })),
      ).toEqual([
        {
          action: 'create',
          principal: 'alice',
          versionBefore: 0,
          versionAfter: 1,
          diff: `register orders.events-value version 1 (id ${schemaId}, AVRO)\n${v1.schema}\n`,
          source: 'schema-registry orders.events-value',
        },
        {
          action: 'update',
          principal: 'bob',
          versionBefore: 0,
          versionAfter: 0,
          diff: 'compatibility of orders.events-value: (unset) → FULL\n',
          source: 'schema-registry orders.events-value',
        },
        {
          action: 'delete',
          principal: 'carol',
          versionBefore: 1,
          versionAfter: 0,
          diff: `delete orders.events-value version 1 (id ${schemaId})\n`,
          source: 'schema-registry orders.events-value',
        },
      ]);
    });

    it('refuses subjects outside the naming rule and namespaces that do not exist', async () => {
      const { registry } = await ready();
      expect((await rejection(registry.register('orders-events', v1, 'alice'))).errorCode).toBe(42208);
      const missing = await rejection(registry.register('shipping.events-value', v1, 'alice'));
      expect(missing.errorCode).toBe(40401);
      expect(missing.message).toBe(
        "Subject 'shipping.events-value' not found: namespace 'shipping' does not exist",
      );
      expect(
        (await rejection(registry.register('orders.events-value', { schema: '{"type": "nope"}' }, 'alice')))
          .errorCode,
      ).toBe(42201);
      expect(
        (
          await rejection(
            registry.register(
              'orders.events-value',
              { ...v1, references: [{ name: 'x', subject: 'y', version: 1 }] },
              'alice',
            ),
          )
        ).message,
      ).toBe('Invalid schema: schema references are not supported by Prism');
    });

    it('gives two admins registering on one store at once distinct versions', async () => {
      const a = await ready();
      const b = await registryOn();
      const schemas = Array.from({ length: 6 }, (_, i) =>
        avro([id, { name: `f${i}`, type: 'int', default: i }]),
      );
      await a.registry.setMode('orders.events-value', 'NONE', 'alice');
      const results = await Promise.all(
        schemas.map((s, i) =>
          (i % 2 === 0 ? a.registry : b.registry).register('orders.events-value', s, 'alice'),
        ),
      );
      expect(results.map((r) => r.version).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(await a.registry.versionNumbers('orders.events-value')).toEqual([1, 2, 3, 4, 5, 6]);
    });
  };
  if (backend.service)
    await describeWithService(backend.service, `schema registry on ${backend.name}`, suite);
  else describe(`schema registry on ${backend.name}`, suite);
}
