/**
 * The admin's schema registry through a third-party client: @kafkajs/confluent-schema-registry
 * registers Avro and JSON Schema schemas against a real `prismctl admin serve`, fetches them by id
 * from a second client with an empty cache, and encodes and decodes messages in Confluent's wire
 * format; a BACKWARD-breaking evolution is refused with its reason (docs/schemas.md).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIdp, DEV_AUDIENCE } from '../../src/auth/dev-idp.js';
import { deviceLogin } from '../../src/auth/login.js';
import { DEFAULT_SCOPES } from '../../src/auth/oidc-config.js';
import { TokenCache } from '../../src/auth/token-cache.js';
import { approveDeviceCode } from '../integration/auth/play-person.js';
import { startAdmin, type RunningAdmin } from '../support/admin-process.js';
import { ensureBuilt, REPO_ROOT, runCli } from '../support/cli.js';
import { uniqueName } from '../support/services.js';

const order = (fields: unknown[]) =>
  JSON.stringify({ type: 'record', name: 'Order', namespace: 'shop', fields });

describe('the admin as a Confluent schema registry', () => {
  const name = uniqueName('schemas');
  let admin: RunningAdmin;
  let url: string;
  const client = () => new SchemaRegistry({ host: url, retry: { retries: 0 } });

  beforeAll(async () => {
    await ensureBuilt();
    admin = await startAdmin();
    url = `http://127.0.0.1:${admin.httpPort}`;
    const file = join(mkdtempSync(join(tmpdir(), 'prism-schemas-ns-')), `${name}.yaml`);
    writeFileSync(
      file,
      `namespace: ${name}\nteam: commerce\npatterns:\n  - name: events\n    type: producer\n    slots:\n      sink: { backend: memstore }\n    settings: { topic: orders }\n`,
    );
    const applied = await runCli(['namespace', 'apply', file, '--admin', admin.endpoint]);
    expect(applied.code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    expect(await admin?.stop()).toBe(0);
  });

  it('registers an Avro schema, serves it by id to a fresh client, and round-trips a message', async () => {
    const subject = `${name}.orders-value`;
    const schema = order([
      { name: 'id', type: 'string' },
      { name: 'amount', type: 'long' },
    ]);
    const { id } = await client().register({ type: SchemaType.AVRO, schema }, { subject });
    expect(id).toBeGreaterThan(0);

    const encoded = await client().encode(id, { id: 'o-1', amount: 1250 });
    expect(encoded.readUInt8(0)).toBe(0);
    expect(encoded.readInt32BE(1)).toBe(id);
    const reader = client();
    expect(await reader.decode(encoded)).toEqual({ id: 'o-1', amount: 1250 });
    expect(await reader.getLatestSchemaId(subject)).toBe(id);
    expect(await reader.getRegistryIdBySchema(subject, { type: SchemaType.AVRO, schema })).toBe(id);

    const stored = (await (await fetch(`${url}/schemas/ids/${id}`)).json()) as unknown;
    expect(stored).toEqual({ schema });
    const config = (await (await fetch(`${url}/config/${subject}`)).json()) as unknown;
    expect(config).toEqual({ compatibilityLevel: 'BACKWARD' });
  });

  it('accepts a compatible evolution and refuses a BACKWARD-breaking one with the reason', async () => {
    const subject = `${name}.evolving-value`;
    const registry = client();
    await registry.register(
      { type: SchemaType.AVRO, schema: order([{ name: 'id', type: 'string' }]) },
      { subject },
    );
    const v2 = order([
      { name: 'id', type: 'string' },
      { name: 'note', type: 'string', default: '' },
    ]);
    const second = await registry.register({ type: SchemaType.AVRO, schema: v2 }, { subject });
    const refused = await registry
      .register(
        {
          type: SchemaType.AVRO,
          schema: order([
            { name: 'id', type: 'string' },
            { name: 'qty', type: 'int' },
          ]),
        },
        { subject },
      )
      .then(
        () => undefined,
        (err: unknown) => err as { status: number; message: string },
      );
    expect(refused?.status).toBe(409);
    expect(refused?.message).toContain(
      `Schema being registered is incompatible with an earlier schema for subject "${subject}" (BACKWARD): version 2 (BACKWARD, new schema reads old data): Avro: no matching field for default-less shop.Order.qty`,
    );
    expect(await registry.getLatestSchemaId(subject)).toBe(second.id);
    const versions = (await (await fetch(`${url}/subjects/${subject}/versions`)).json()) as unknown;
    expect(versions).toEqual([1, 2]);
  });

  it('registers a JSON Schema and validates payloads on encode', async () => {
    const subject = `${name}.payments-value`;
    const schema = JSON.stringify({
      type: 'object',
      properties: { id: { type: 'string' }, amount: { type: 'number' } },
      required: ['id', 'amount'],
      additionalProperties: false,
    });
    const { id } = await client().register({ type: SchemaType.JSON, schema }, { subject });
    const encoded = await client().encode(id, { id: 'p-1', amount: 9.5 });
    expect(await client().decode(encoded)).toEqual({ id: 'p-1', amount: 9.5 });
    await expect(client().encode(id, { id: 'p-2' })).rejects.toThrow('invalid payload');
    const stored = (await (await fetch(`${url}/subjects/${subject}/versions/latest`)).json()) as unknown;
    expect(stored).toEqual({ subject, version: 1, id, schema, schemaType: 'JSON' });
  });

  it('registers a protobuf schema as .proto text and round-trips a message', async () => {
    const subject = `${name}.parcels-value`;
    const schema =
      'syntax = "proto3";\npackage shop;\nmessage Parcel {\n  string id = 1;\n  int64 grams = 2;\n}\n';
    const { id } = await client().register({ type: SchemaType.PROTOBUF, schema }, { subject });
    const encoded = await client().encode(id, { id: 'p-7', grams: 1200 });
    const decoded = (await client().decode(encoded)) as { id: string; grams: unknown };
    expect({ id: decoded.id, grams: Number(decoded.grams) }).toEqual({ id: 'p-7', grams: 1200 });
    const stored = (await (await fetch(`${url}/schemas/ids/${id}`)).json()) as unknown;
    expect(stored).toEqual({ schema, schemaType: 'PROTOBUF' });
  });

  it('answers the compatibility check and unknown subjects with Confluent’s shapes and codes', async () => {
    const subject = `${name}.payments-value`;
    const check = await fetch(`${url}/compatibility/subjects/${subject}/versions/latest`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({
        schemaType: 'JSON',
        schema: JSON.stringify({ type: 'object', properties: { id: { type: 'integer' } } }),
      }),
    });
    expect(check.status).toBe(200);
    expect(await check.json()).toEqual({
      is_compatible: false,
      messages: [
        'version 1 (BACKWARD, new schema reads old data): #/properties/id: type narrowed: the writer allows string, the reader only integer',
      ],
    });
    const missing = await fetch(`${url}/subjects/${name}.nothing-value/versions/latest`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error_code: 40401,
      message: `Subject '${name}.nothing-value' not found.`,
    });
    const invalid = await fetch(`${url}/subjects/${name}.orders-value/versions`, {
      method: 'POST',
      body: JSON.stringify({ schema: '{"type": "record", "name": "X"}' }),
    });
    expect(invalid.status).toBe(422);
    expect(((await invalid.json()) as { error_code: number }).error_code).toBe(42201);
  });

  it('serves config, deletes and lookups with Confluent’s shapes and codes', async () => {
    const subject = `${name}.returns-value`;
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      expect(res.headers.get('content-type')).toBe('application/vnd.schemaregistry.v1+json');
      return [res.status, await res.json()] as const;
    };
    const schema = order([
      { name: 'id', type: 'string' },
      { name: 'reason', type: 'string' },
    ]);
    expect(await call('GET', '/schemas/types')).toEqual([200, ['AVRO', 'JSON', 'PROTOBUF']]);
    expect(await call('GET', `/config/${subject}`)).toEqual([
      404,
      {
        error_code: 40408,
        message: `Subject '${subject}' does not have subject-level compatibility configured`,
      },
    ]);
    expect(await call('GET', `/config/${subject}?defaultToGlobal=true`)).toEqual([
      200,
      { compatibilityLevel: 'BACKWARD' },
    ]);
    expect(await call('PUT', `/config/${subject}`, { compatibility: 'full_transitive' })).toEqual([
      200,
      { compatibility: 'FULL_TRANSITIVE' },
    ]);
    expect((await call('PUT', `/config/${subject}`, { compatibility: 'SOMETIMES' }))[1]).toMatchObject({
      error_code: 42203,
    });
    const [, { id }] = (await call('POST', `/subjects/${subject}/versions`, { schema })) as [
      number,
      { id: number },
    ];
    expect(await call('POST', `/subjects/${subject}`, { schema })).toEqual([
      200,
      { subject, version: 1, id, schema },
    ]);
    expect(await call('GET', `/schemas/ids/${id}/versions`)).toEqual([200, [{ subject, version: 1 }]]);
    expect((await call('GET', `/subjects/${subject}/versions/one`))[1]).toMatchObject({ error_code: 42202 });
    expect((await call('GET', `/subjects/${subject}/versions/9`))[1]).toMatchObject({ error_code: 40402 });
    expect((await call('GET', '/subjects/not-a-subject/versions'))[1]).toMatchObject({ error_code: 42208 });
    expect(await call('DELETE', `/subjects/${subject}?permanent=true`)).toEqual([
      404,
      {
        error_code: 40405,
        message: `Subject '${subject}' was not deleted first before being permanently deleted`,
      },
    ]);
    expect(await call('DELETE', `/subjects/${subject}`)).toEqual([200, [1]]);
    expect(await call('GET', `/subjects/${subject}/versions?deleted=true`)).toEqual([200, [1]]);
    expect(await call('GET', `/schemas/ids/${id}`)).toEqual([200, { schema }]);
    expect(await call('DELETE', `/subjects/${subject}?permanent=true`)).toEqual([200, [1]]);
    expect((await call('GET', `/subjects/${subject}/versions?deleted=true`))[1]).toMatchObject({
      error_code: 40401,
    });
    expect((await call('GET', '/schemas/ids/999999'))[1]).toMatchObject({ error_code: 40403 });
  });

  it('registers, lists, shows and checks schemas with prismctl schema, protobuf as .proto text and as a FileDescriptorSet', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-schema-cli-'));
    const subject = `${name}.shipments-value`;
    const proto = (amount: string) =>
      `syntax = "proto3";\npackage shop;\nmessage Shipment {\n  string id = 1;\n  ${amount} weight = 2;\n}\n`;
    writeFileSync(join(dir, 'v1.proto'), proto('int64'));
    const cli = (...args: string[]) => runCli(['schema', ...args, '--registry', url]);

    const registered = await cli('register', subject, join(dir, 'v1.proto'), '--json');
    expect(registered.stderr).toBe('');
    const first = JSON.parse(registered.stdout) as { id: number };
    expect(first).toEqual({ subject, id: first.id, version: 1 });

    // v2 as a binary FileDescriptorSet, built by buf from .proto text with one more field.
    mkdirSync(join(dir, 'v2'));
    writeFileSync(join(dir, 'v2', 'shipment.proto'), proto('int64').replace('}', '  string carrier = 3;\n}'));
    execFileSync(
      join(REPO_ROOT, 'node_modules/.bin/buf'),
      ['build', join(dir, 'v2'), '-o', join(dir, 'v2.binpb')],
      {
        env: { ...process.env, BUF_CACHE_DIR: join(dir, 'buf-cache') },
      },
    );
    const second = JSON.parse((await cli('register', subject, join(dir, 'v2.binpb'), '--json')).stdout) as {
      version: number;
    };
    expect(second.version).toBe(2);

    expect(JSON.parse((await cli('list', subject, '--json')).stdout)).toEqual([1, 2]);
    expect(JSON.parse((await cli('list', '--json')).stdout)).toContain(subject);
    const shown = JSON.parse((await cli('get', subject, '--version', '1', '--json')).stdout) as unknown;
    expect(shown).toEqual({
      subject,
      version: 1,
      id: first.id,
      schemaType: 'PROTOBUF',
      schema: proto('int64'),
    });
    expect((await cli('get', '--id', String(first.id))).stdout).toBe(proto('int64'));

    writeFileSync(join(dir, 'v3.proto'), proto('string'));
    const check = await cli('check', subject, join(dir, 'v3.proto'));
    expect(check.code).toBe(1);
    expect(check.stdout).toBe(
      `incompatible with ${subject} latest:\n  version 2: schema.proto:3:1: FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED: Previously present field "3" with name "carrier" on message "Shipment" was deleted without reserving the number "3".\n  version 2: schema.proto:5:3: FIELD_WIRE_COMPATIBLE_TYPE: Field "2" with name "weight" on message "Shipment" changed type from "int64" to "string". See https://developers.google.com/protocol-buffers/docs/proto3#updating for wire compatibility rules.\n`,
    );
    const refused = await cli('register', subject, join(dir, 'v3.proto'));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('error E_INVALID_ARGUMENT: Schema being registered is incompatible');
    expect(JSON.parse((await cli('list', subject, '--json')).stdout)).toEqual([1, 2]);

    const diff = await cli('diff', subject, '--from', '1', '--file', join(dir, 'v3.proto'));
    expect(diff.code).toBe(1);
    expect(diff.stdout).toBe(
      `===================================================================\n--- ${subject}@1\t\n+++ ${join(dir, 'v3.proto')}\t\n@@ -2,5 +2,5 @@\n package shop;\n message Shipment {\n   string id = 1;\n-  int64 weight = 2;\n+  string weight = 2;\n }\n`,
    );
    const same = await cli('diff', subject, '--from', '1', '--to', '1', '--json');
    expect(same.code).toBe(0);
    expect(JSON.parse(same.stdout)).toEqual({ subject, from: `${subject}@1`, to: `${subject}@1`, diff: '' });
  });

  it('lists the namespace’s schema changes in its history', async () => {
    const history = await runCli(['namespace', 'history', name, '--json', '--admin', admin.endpoint]);
    const entries = JSON.parse(history.stdout) as Array<{
      action: string;
      source: string;
      principal: string;
    }>;
    expect(
      entries.filter((e) => e.source.startsWith('schema-registry')).map((e) => [e.action, e.source]),
    ).toEqual([
      ['create', `schema-registry ${name}.orders-value`],
      ['update', `schema-registry ${name}.orders-value`],
      ['create', `schema-registry ${name}.evolving-value`],
      ['update', `schema-registry ${name}.evolving-value`],
      ['create', `schema-registry ${name}.evolving-value`],
      ['create', `schema-registry ${name}.payments-value`],
      ['update', `schema-registry ${name}.payments-value`],
      ['create', `schema-registry ${name}.parcels-value`],
      ['update', `schema-registry ${name}.parcels-value`],
      ['update', `schema-registry ${name}.returns-value`],
      ['create', `schema-registry ${name}.returns-value`],
      ['delete', `schema-registry ${name}.returns-value`],
      ['delete', `schema-registry ${name}.returns-value`],
      ['create', `schema-registry ${name}.shipments-value`],
      ['create', `schema-registry ${name}.shipments-value`],
    ]);
  });
});

/**
 * With auth on, the registry takes the bearer tokens the gRPC side accepts: the admin group may
 * register (through the third-party client, with a middleware adding the header), a reader may
 * read and not write, and a request without a token is refused with 40101.
 */
describe('the schema registry of an authenticated admin', () => {
  const idp = new DevIdp();
  const devHome = mkdtempSync(join(tmpdir(), 'prism-schemas-dev-'));
  const name = uniqueName('schemauth');
  let admin: RunningAdmin;
  let url: string;
  const other = uniqueName('schemaother');
  let devToken = '';
  let bobToken = '';
  let aliceToken = '';

  const login = async (issuer: string, home: string, person: string) =>
    (
      await deviceLogin(
        { issuer, clientId: 'prismctl', scopes: DEFAULT_SCOPES },
        new TokenCache(home),
        (p) => void approveDeviceCode(p.verificationUri, p.userCode, person),
        { intervalSeconds: 0.05 },
      )
    ).accessToken;

  beforeAll(async () => {
    await ensureBuilt();
    const issuer = await idp.start();
    devToken = await login(issuer, devHome, 'dev@local.prism');
    bobToken = await login(issuer, mkdtempSync(join(tmpdir(), 'prism-schemas-bob-')), 'bob@example.com');
    aliceToken = await login(
      issuer,
      mkdtempSync(join(tmpdir(), 'prism-schemas-alice-')),
      'alice@example.com',
    );
    const dir = mkdtempSync(join(tmpdir(), 'prism-schemas-ns-'));
    // docs/schemas.md: a global policy lets a team change only its own namespaces' subjects.
    writeFileSync(
      join(dir, 'team-schemas.cedar'),
      '@id("team-schemas")\npermit (principal, action == Prism::Action::"schema.write", resource)\nwhen { resource has team && principal.groups.contains(resource.team) };\n',
    );
    admin = await startAdmin({
      extraArgs: [
        ...['--auth-issuer', issuer, '--auth-audience', DEV_AUDIENCE],
        ...['--auth-admin-group', 'prism-admins', '--auth-reader-group', 'analytics'],
        ...['--policies', join(dir, 'team-schemas.cedar')],
      ],
    });
    url = `http://127.0.0.1:${admin.httpPort}`;
    for (const [namespace, team] of [
      [name, 'commerce'],
      [other, 'billing'],
    ] as const) {
      const file = join(dir, `${namespace}.yaml`);
      writeFileSync(
        file,
        `namespace: ${namespace}\nteam: ${team}\npatterns:\n  - name: events\n    type: producer\n    slots:\n      sink: { backend: memstore }\n    settings: { topic: orders }\n`,
      );
      const applied = await runCli(['namespace', 'apply', file, '--admin', admin.endpoint], {
        env: { PRISM_HOME: devHome, PRISM_TOKEN: '' },
      });
      expect(applied.stderr).toBe('');
    }
  }, 120_000);

  afterAll(async () => {
    expect(await admin?.stop()).toBe(0);
    await idp.stop();
  });

  const bearer = (token: string) => () => ({
    request: (req: { enhance(changes: { headers: Record<string, string> }): unknown }) =>
      req.enhance({ headers: { authorization: `Bearer ${token}` } }),
  });

  it('lets the admin group register through the client and records the principal', async () => {
    const registry = new SchemaRegistry({
      host: url,
      retry: { retries: 0 },
      middlewares: [bearer(devToken) as never],
    });
    const schema = order([{ name: 'id', type: 'string' }]);
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema },
      { subject: `${name}.orders-value` },
    );
    expect(await registry.decode(await registry.encode(id, { id: 'o-9' }))).toEqual({ id: 'o-9' });
    const history = await runCli(['namespace', 'history', name, '--json', '--admin', admin.endpoint], {
      env: { PRISM_HOME: devHome, PRISM_TOKEN: '' },
    });
    const entries = JSON.parse(history.stdout) as Array<{
      action: string;
      principal: string;
      source: string;
    }>;
    expect(entries.find((e) => e.source === `schema-registry ${name}.orders-value`)).toMatchObject({
      action: 'create',
      principal: 'dev@local.prism',
    });
  });

  it('lets a reader read and refuses its register with 40301', async () => {
    const headers = { authorization: `Bearer ${bobToken}` };
    const list = await fetch(`${url}/subjects`, { headers });
    expect(list.status).toBe(200);
    expect(await list.json()).toContain(`${name}.orders-value`);
    const write = await fetch(`${url}/subjects/${name}.orders-value/versions`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ schema: order([{ name: 'id', type: 'string' }]) }),
    });
    expect(write.status).toBe(403);
    expect(await write.json()).toEqual({
      error_code: 40301,
      message: 'bob@example.com may not write on the control plane (WriteSchemas)',
    });
  });

  it('lets a team change its own namespace’s subjects, by a global policy, and no other namespace’s', async () => {
    const headers = { authorization: `Bearer ${aliceToken}` };
    const register = (namespace: string) =>
      fetch(`${url}/subjects/${namespace}.team-value/versions`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ schema: order([{ name: 'id', type: 'string' }]) }),
      });
    const own = await register(name);
    expect(own.status).toBe(200);
    const foreign = await register(other);
    expect(foreign.status).toBe(403);
    expect(await foreign.json()).toEqual({
      error_code: 40301,
      message: 'alice@example.com may not write on the control plane (WriteSchemas)',
    });
    const global = await fetch(`${url}/config`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ compatibility: 'NONE' }),
    });
    expect(global.status).toBe(403);
  });

  it('refuses a request without a token with 40101 and never logs a token', async () => {
    const res = await fetch(`${url}/subjects`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error_code: 40101, message: 'no bearer token in the call' });
    for (const token of [devToken, bobToken, aliceToken])
      expect(admin.logs()).not.toContain(token.split('.')[2]!);
  });
});
