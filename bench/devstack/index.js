// Time to ready of the embedded stack (`prismctl dev up --embedded`, wall clock until it returns)
// and the cost of an idempotent second `dev up`, each measured as a user runs it: the built CLI
// in a fresh process, with a fresh prism home and free non-default ports.
//
//   npm run build && node bench/devstack/index.js [runs]
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli as run, freePorts } from './common.js';

const cli = (args, env) => run(args, env).ms;
const runs = Number(process.argv[2] ?? 5);

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
};

const baseline = [];
const first = [];
const second = [];
for (let i = 0; i < runs; i++) {
  const home = mkdtempSync(join(tmpdir(), 'prism-bench-dev-'));
  const [a, am, p, pm, idp] = await freePorts(5);
  const ports = [
    '--admin-port',
    a,
    '--admin-metrics-port',
    am,
    '--proxy-port',
    p,
    '--proxy-metrics-port',
    pm,
    '--idp-port',
    idp,
  ].map(String);
  const env = { PRISM_HOME: home };
  try {
    baseline.push(cli(['--version'], env));
    first.push(cli(['dev', 'up', '--embedded', ...ports], env));
    second.push(cli(['dev', 'up', '--embedded', ...ports], env));
  } finally {
    cli(['dev', 'down'], env);
    rmSync(home, { recursive: true, force: true });
  }
}

const ms = (x) => `${x.toFixed(0)} ms`;
const row = (name, xs, goal) => {
  const { median, min, max } = stats(xs);
  return `| ${name} | ${ms(median)} | ${ms(min)} | ${ms(max)} | ${goal} |`;
};
console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${runs} runs`);
console.log('| measure | median | min | max | goal |');
console.log('| --- | --- | --- | --- | --- |');
console.log(row('`prismctl --version` (CLI start-up alone)', baseline, '—'));
console.log(row('`dev up --embedded` until ready (fresh home)', first, '< 1500 ms'));
console.log(row('second `dev up` (already running, no-op)', second, '< 1000 ms'));
