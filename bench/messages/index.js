#!/usr/bin/env node
// Benchmark (not a test) of message contracts (issue 20, "Done when"): publish throughput through
// the proxy with each payload stage, as a ratio of plain publish in the same run.
//
// Starts a real `prismctl admin serve` (the schema registry) and `prismctl proxy serve --admin`,
// applies one namespace with a producer per case on one backend (--backend nats|kafka), runs each
// case's setup (e.g. registering its schema), then drives every producer with PublishBatch
// (--batch messages per call, --concurrency calls in flight) for --seconds, in interleaved rounds
// so that load from elsewhere weighs on every case alike. Prints messages/s per case (median of
// the rounds) and the ratio to `plain`, with each case's goal.
//
// A case is one entry of CASES: its producer settings, an optional setup against the running
// stack, the payload it publishes, its goal, and optionally proxy arguments it needs.
//
// Run after `npm run build` with the test services up:
//   eval "$(bash scripts/test-services.sh env)"
//   node bench/messages/index.js [--backend nats] [--seconds 5] [--rounds 3] [--cases plain,json]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import avro from 'avsc';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'nats' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    batch: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '4' },
    cases: { type: 'string', default: '' },
  },
});
const SECONDS = Number(values.seconds);
const BATCH = Number(values.batch);
const CONCURRENCY = Number(values.concurrency);
const { DataClient } = await import(join(root, 'dist/client/data-client.js'));

const ORDER_JSON = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    amount: { type: 'number', minimum: 0 },
    currency: { type: 'string', enum: ['EUR', 'USD'] },
    customer: {
      type: 'object',
      properties: { email: { type: 'string', format: 'email' }, name: { type: 'string' } },
      required: ['email'],
    },
    lines: {
      type: 'array',
      items: {
        type: 'object',
        properties: { sku: { type: 'string' }, quantity: { type: 'integer', minimum: 1 } },
        required: ['sku', 'quantity'],
      },
    },
  },
  required: ['id', 'amount', 'currency'],
  additionalProperties: false,
};
const ORDER = {
  id: 'o-0001',
  amount: 129.5,
  currency: 'EUR',
  customer: { email: 'ada@example.com', name: 'Ada Lovelace' },
  lines: [
    { sku: 'book-001', quantity: 1 },
    { sku: 'pen-017', quantity: 3 },
  ],
};
const ORDER_PROTO = `syntax = "proto3";
package shop;
message Order {
  string id = 1;
  double amount = 2;
  string currency = 3;
  Customer customer = 4;
  repeated Line lines = 5;
}
message Customer { string email = 1; string name = 2; }
message Line { string sku = 1; uint32 quantity = 2; }
`;
const ORDER_AVRO = {
  type: 'record',
  name: 'Order',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'amount', type: 'double' },
    { name: 'currency', type: 'string' },
    {
      name: 'customer',
      type: {
        type: 'record',
        name: 'Customer',
        fields: [
          { name: 'email', type: 'string' },
          { name: 'name', type: 'string' },
        ],
      },
    },
    {
      name: 'lines',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'Line',
          fields: [
            { name: 'sku', type: 'string' },
            { name: 'quantity', type: 'int' },
          ],
        },
      },
    },
  ],
};

/** ORDER in protobuf binary (shop.Order above), written by hand to keep the bench dependency-free. */
function orderProto() {
  const str = (no, s) => {
    const b = Buffer.from(s);
    return Buffer.concat([Buffer.from([(no << 3) | 2, b.length]), b]);
  };
  const msg = (no, parts) => {
    const b = Buffer.concat(parts);
    return Buffer.concat([Buffer.from([(no << 3) | 2, b.length]), b]);
  };
  const amount = Buffer.alloc(9);
  amount[0] = (2 << 3) | 1;
  amount.writeDoubleLE(ORDER.amount, 1);
  return Buffer.concat([
    str(1, ORDER.id),
    amount,
    str(3, ORDER.currency),
    msg(4, [str(1, ORDER.customer.email), str(2, ORDER.customer.name)]),
    ...ORDER.lines.map((l) => msg(5, [str(1, l.sku), Buffer.from([0x10, l.quantity])])),
  ]);
}

const schemaCase = (name, schemaType, schema, payload) => ({
  name,
  goal: 0.8,
  settings: (ctx) => ({ schema: `{ subject: ${ctx.namespace}.${name}-value, enforce: true }` }),
  setup: (ctx) => ctx.register(`${ctx.namespace}.${name}-value`, schema, schemaType),
  payload,
});

/**
 * The cases. `plain` is the baseline every other case is divided by. Fields: name (also the
 * producer pattern and topic), goal (minimum ratio to plain), settings(ctx) (extra producer
 * settings as YAML flow values), setup(ctx) (runs after the namespace is applied), payload
 * (bytes published), proxyArgs(ctx) (extra `proxy serve` arguments).
 */
const CASES = [
  { name: 'plain', settings: () => ({}), payload: Buffer.from(JSON.stringify(ORDER)) },
  schemaCase('json', 'JSON', JSON.stringify(ORDER_JSON), Buffer.from(JSON.stringify(ORDER))),
  schemaCase('protobuf', 'PROTOBUF', ORDER_PROTO, orderProto()),
  schemaCase('avro', 'AVRO', JSON.stringify(ORDER_AVRO), avro.Type.forSchema(ORDER_AVRO).toBuffer(ORDER)),
];

// -- the stack ------------------------------------------------------------------------------

/** Starts `prismctl <args>` and resolves with its "serving" log line once it serves. */
function serve(args, readyMessage, home) {
  const child = spawn(process.execPath, [join(root, 'bin/run.js'), ...args], {
    env: { ...process.env, PRISM_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (d) => (output += d));
  return new Promise((resolveReady, reject) => {
    child.stdout.on('data', (d) => {
      output += d;
      const line = output.split('\n').find((l) => l.includes(`"msg":"${readyMessage}"`));
      if (line) resolveReady({ child, ready: JSON.parse(line) });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}:\n${output}`)));
  });
}

function cli(args) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin/run.js'), ...args], { stdio: 'pipe' });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('exit', (code) => (code === 0 ? resolveRun(output) : reject(new Error(output))));
  });
}

function endpointOf(backend) {
  if (backend === 'nats') return process.env.PRISM_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
  if (backend === 'kafka') return `kafka://${process.env.PRISM_TEST_KAFKA_BROKERS ?? '127.0.0.1:9092'}`;
  throw new Error(`--backend ${backend}: use nats or kafka`);
}

async function main() {
  const chosen = values.cases ? values.cases.split(',') : CASES.map((c) => c.name);
  const cases = CASES.filter((c) => c.name === 'plain' || chosen.includes(c.name));
  const dir = mkdtempSync(join(tmpdir(), 'prism-bench-messages-'));
  const namespace = `bench-msg-${Date.now().toString(36)}`;
  const stops = [];
  try {
    writeFileSync(
      join(dir, 'backends.yaml'),
      `backends:\n  ${values.backend}: [{ name: bench, endpoint: "${endpointOf(values.backend)}" }]\n`,
    );
    const admin = await serve(
      [
        ...['admin', 'serve', '--no-auth', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
        ...['--backends', join(dir, 'backends.yaml'), '--heartbeat-interval', '300'],
      ],
      'prism admin serving',
      join(dir, 'admin-home'),
    );
    stops.push(() => admin.child.kill('SIGTERM'));
    const adminEndpoint = `127.0.0.1:${admin.ready.port}`;
    const ctx = {
      namespace,
      adminEndpoint,
      adminHttp: `http://127.0.0.1:${admin.ready.httpPort}`,
      async register(subject, schema, schemaType) {
        const res = await globalThis.fetch(`${ctx.adminHttp}/subjects/${subject}/versions`, {
          method: 'POST',
          headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
          body: JSON.stringify({ schema, schemaType }),
        });
        if (res.status !== 200) throw new Error(`register ${subject}: ${await res.text()}`);
      },
    };
    const proxy = await serve(
      [
        ...['proxy', 'serve', '--no-auth', '--admin', adminEndpoint],
        ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
        ...cases.flatMap((c) => c.proxyArgs?.(ctx) ?? []),
      ],
      'prism proxy serving',
      join(dir, 'proxy-home'),
    );
    stops.push(() => proxy.child.kill('SIGTERM'));
    const lines = [`namespace: ${namespace}`, 'team: bench', 'patterns:'];
    for (const c of cases) {
      const settings = { topic: c.name, batch_size: 64, batch_interval: '2ms', ...c.settings(ctx) };
      lines.push(
        `  - name: ${c.name}`,
        '    type: producer',
        `    slots: { sink: { backend: ${values.backend} } }`,
        `    settings: { ${Object.entries(settings)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ')} }`,
      );
    }
    writeFileSync(join(dir, 'ns.yaml'), `${lines.join('\n')}\n`);
    await cli(['namespace', 'apply', join(dir, 'ns.yaml'), '--admin', adminEndpoint]);
    for (const c of cases) await c.setup?.(ctx);

    const endpoint = `127.0.0.1:${proxy.ready.port}`;
    const clients = new Map(
      cases.map((c) => [c.name, new DataClient(endpoint, { namespace, pattern: c.name, timeoutMs: 30_000 })]),
    );
    stops.push(() => clients.forEach((client) => client.close()));
    for (const c of cases) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          await clients.get(c.name).publish({ payload: c.payload });
          break;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`case ${c.name} never published: ${err.message}`);
          await sleep(200);
        }
      }
    }

    // The proxy's CPU time (utime + stime, clock ticks of 10 ms) tells the cost per message even
    // when other processes take the cores: under saturation throughput is its inverse.
    const proxyCpuMs = () => {
      const fields = readFileSync(`/proc/${proxy.child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(fields[11]) + Number(fields[12])) * 10;
    };
    const cpu = new Map(cases.map((c) => [c.name, []]));
    const run = async (c, seconds) => {
      const client = clients.get(c.name);
      const messages = Array.from({ length: BATCH }, () => ({ payload: c.payload }));
      const end = performance.now() + seconds * 1000;
      let sent = 0;
      const worker = async () => {
        while (performance.now() < end) {
          await client.publishBatch({ messages });
          sent += BATCH;
        }
      };
      const started = performance.now();
      const cpuBefore = proxyCpuMs();
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      cpu.get(c.name).push(((proxyCpuMs() - cpuBefore) * 1000) / sent);
      return sent / ((performance.now() - started) / 1000);
    };

    for (const c of cases) await run(c, 1); // warm-up: JIT, connections, schema caches
    for (const c of cases) cpu.get(c.name).length = 0;
    const rates = new Map(cases.map((c) => [c.name, []]));
    for (let round = 0; round < Number(values.rounds); round++)
      for (const c of cases) rates.get(c.name).push(await run(c, SECONDS));

    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const base = median(rates.get('plain'));
    const baseCpu = median(cpu.get('plain'));
    const load = loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
    console.log(
      `machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, load ${load}; ` +
        `${values.backend} through the proxy, PublishBatch of ${BATCH}, ${CONCURRENCY} in flight, ` +
        `${values.rounds} interleaved rounds of ${SECONDS} s, medians; payloads ${cases
          .map((c) => `${c.name} ${c.payload.length} B`)
          .join(', ')}`,
    );
    for (const c of cases) {
      const rate = median(rates.get(c.name));
      const ratio = rate / base;
      const goal = c.goal === undefined ? '' : `  goal >= ${c.goal} ${ratio >= c.goal ? 'met' : 'NOT met'}`;
      const cpuPer = median(cpu.get(c.name));
      console.log(
        `${c.name.padEnd(12)} ${rate.toFixed(0).padStart(8)} msg/s  ${ratio.toFixed(2)}x plain${goal}   ` +
          `proxy CPU ${cpuPer.toFixed(0)} µs/msg (plain ÷ this: ${(baseCpu / cpuPer).toFixed(2)})`,
      );
    }
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

await main();
