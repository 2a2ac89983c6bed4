#!/usr/bin/env node
// Benchmark (not a test): how fast prismctl starts, as ratios to `node -e 0` measured in the same
// run. Each round runs every case once, in turn (interleaved, so that load from elsewhere on the
// machine weighs on all of them); the first round only warms caches. Figures are medians of the
// process's CPU time (user + sys, from bash's `times`) and of its wall time. Run after
// `npm run build`:
//
//   node bench/cli/index.js [--runs 15] [--files 1000] [--before <other checkout>/bin/run.js]
//                           [--label before]
//
// --before runs the same cases with a second prismctl (an older build, or another bundling) in
// the same rounds; --label names it in the output. `validate in-process` is validatePaths() from
// dist/ over the same files in this process (bench/validate's figure), best of the rounds.
// A proxy for `kv get` is started from this checkout with `prismctl proxy serve` on free
// loopback ports, serving examples/namespaces/embedded-playground.yaml (sqlite, in-process).
import { spawn, spawnSync } from 'node:child_process';
import { get } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateFiles } from '../validate/generate.js';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '15' },
    files: { type: 'string', default: '1000' },
    before: { type: 'string' },
    label: { type: 'string', default: 'before' },
  },
});
const runs = Number(values.runs);
const fileCount = Number(values.files);
const clis = {
  this: join(root, 'bin/run.js'),
  ...(values.before ? { [values.label]: resolve(values.before) } : {}),
};

const work = mkdtempSync(join(tmpdir(), 'prism-bench-cli-'));
const env = { ...process.env, PRISM_HOME: join(work, 'home'), NO_COLOR: '1' };
delete env.PRISM_TOKEN;
const filesDir = join(work, 'namespaces');
generateFiles(filesDir, fileCount);
const oneFile = join(filesDir, 'ns-00000.yaml');

const [grpcPort, httpPort] = [await freePort(), await freePort()];
const proxyAddress = `127.0.0.1:${grpcPort}`;
const proxy = spawn(
  process.execPath,
  [
    clis.this,
    ...['proxy', 'serve', '--namespaces', join(root, 'examples/namespaces/embedded-playground.yaml')],
    ...['--listen', proxyAddress, '--metrics-listen', `127.0.0.1:${httpPort}`, '--log-level', 'warn'],
  ],
  { env, stdio: ['ignore', 'ignore', 'inherit'] },
);

try {
  await waitReady(`http://127.0.0.1:${httpPort}/readyz`);
  const kv = ['--proxy', proxyAddress, '-n', 'playground'];
  must(run(clis.this, ['kv', 'set', 'bench-key', 'bench-value', ...kv]));

  const cases = [['node -e 0', process.execPath, ['-e', '0']]];
  for (const [label, cli] of Object.entries(clis)) {
    const tag = Object.keys(clis).length > 1 ? ` (${label})` : '';
    cases.push(
      [`prismctl --version${tag}`, cli, ['--version']],
      [`prismctl namespace validate <one file>${tag}`, cli, ['namespace', 'validate', oneFile]],
      [`prismctl kv get${tag}`, cli, ['kv', 'get', 'bench-key', ...kv]],
      [`prismctl complete (TAB)${tag}`, cli, ['complete', '--', 'namespace', 'va']],
      [`prismctl namespace validate <${fileCount} files>${tag}`, cli, ['namespace', 'validate', filesDir]],
    );
  }

  const samples = new Map(cases.map(([name]) => [name, { cpu: [], wall: [] }]));
  for (let round = 0; round <= runs; round++) {
    for (const [name, command, args] of cases) {
      const sample = must(run(command, args));
      if (round > 0) {
        samples.get(name).cpu.push(sample.cpu);
        samples.get(name).wall.push(sample.wall);
      }
    }
  }

  const { validatePaths } = await import(join(root, 'dist/config/validate.js'));
  const rates = [];
  for (let round = 0; round < Math.min(runs, 5); round++) {
    const start = process.hrtime.bigint();
    const { report } = await validatePaths([filesDir]);
    if (!report.valid || report.files !== fileCount) throw new Error('the generated files did not validate');
    rates.push(fileCount / (Number(process.hrtime.bigint() - start) / 1e9));
  }

  const base = samples.get('node -e 0');
  const [baseCpu, baseWall] = [median(base.cpu), median(base.wall)];
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; ${runs} interleaved rounds, medians`,
  );
  for (const [name] of cases) {
    const { cpu, wall } = samples.get(name);
    const [c, w] = [median(cpu), median(wall)];
    let line = `${name.padEnd(48)} cpu ${fmt(c)} s (${(c / baseCpu).toFixed(1)}x)   wall ${fmt(w)} s (${(w / baseWall).toFixed(1)}x)`;
    // Wall time is at the mercy of the machine's load; CPU time much less so.
    if (name.includes(`<${fileCount} files>`))
      line += `   ${(fileCount / w).toFixed(0)} files/s (${(fileCount / c).toFixed(0)} per CPU-s)`;
    console.log(line);
  }
  console.log(
    `validate in-process <${fileCount} files>: median ${median(rates).toFixed(0)} files/s, best ${Math.max(...rates).toFixed(0)} files/s`,
  );
  console.log(
    'targets: --version <= 2x, one-file validate <= 3x, kv get <= 4x, 1,000 files >= 2,000 files/s',
  );
} finally {
  proxy.kill('SIGTERM');
  await new Promise((done) => (proxy.exitCode !== null ? done() : proxy.once('exit', done)));
  rmSync(work, { recursive: true, force: true });
}

/** Runs one command under bash and reads its CPU time from `times` (children's user and sys). */
function run(command, args) {
  const start = process.hrtime.bigint();
  const child = spawnSync(
    'bash',
    ['-c', '"$@" >/dev/null 2>"$ERR"; rc=$?; times; exit $rc', 'bench', command, ...args],
    {
      env: { ...env, ERR: join(work, 'stderr') },
      encoding: 'utf8',
    },
  );
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const children = child.stdout.trim().split('\n').at(-1) ?? '';
  const cpu = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce(
    (sum, m) => sum + Number(m[1]) * 60 + Number(m[2]),
    0,
  );
  return { status: child.status, cpu, wall, command: [command, ...args].join(' ') };
}

function must(sample) {
  if (sample.status !== 0) throw new Error(`${sample.command} exited ${sample.status}`);
  return sample;
}

function median(xs) {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

function fmt(seconds) {
  return seconds.toFixed(3);
}

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
    server.on('error', fail);
  });
}

async function waitReady(url) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proxy.exitCode !== null) throw new Error(`the proxy exited ${proxy.exitCode}`);
    const status = await new Promise((done) => {
      get(url, (res) => {
        res.resume();
        done(res.statusCode);
      }).on('error', () => done(0)); // not listening yet
    });
    if (status === 200) return;
    await sleep(100);
  }
  throw new Error(`the proxy was not ready at ${url} within 30 s`);
}
