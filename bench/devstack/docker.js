// Time to ready of the Docker stack (`prismctl dev up --docker`) with the locally built images of
// scripts/images/build-images.sh (test/fixtures/dev/local-images.yaml: redis, nats, postgres, host
// networking), per component and in total; the cost of an idempotent second `dev up`; and
// `dev down --volumes`. Each run uses a fresh prism home, free ports and its own stack name.
//
//   bash scripts/test-services.sh up && eval "$(bash scripts/test-services.sh env)"
//   npm run build && node bench/devstack/docker.js [runs]
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, freePorts, root } from './common.js';

const runs = Number(process.argv[2] ?? 3);
if (!process.env.DOCKER_HOST) {
  console.error('DOCKER_HOST is not set: eval "$(bash scripts/test-services.sh env)" first');
  process.exit(2);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { total: [], second: [], down: [], components: {} };
for (let i = 0; i < runs; i++) {
  const home = mkdtempSync(join(tmpdir(), 'prism-bench-docker-'));
  copyFileSync(join(root, 'test/fixtures/dev/local-images.yaml'), join(home, 'dev.yaml'));
  const [a, am, p, pm, r, n, nm, pg] = await freePorts(8);
  const stack = `bench${process.pid}${i}`;
  const flags = [
    ...['--stack', stack, '--admin-port', a, '--admin-metrics-port', am, '--proxy-port', p],
    ...['--proxy-metrics-port', pm, '--port', `redis=${r}`, '--port', `nats.client=${n}`],
    ...['--port', `nats.monitor=${nm}`, '--port', `postgres=${pg}`, '--json'],
  ].map(String);
  const env = { PRISM_HOME: home };
  try {
    const first = cli(['dev', 'up', '--docker', ...flags], env);
    results.total.push(first.ms);
    for (const c of JSON.parse(first.out).components) (results.components[c.name] ??= []).push(c.readyMs);
    results.second.push(cli(['dev', 'up', '--docker', ...flags], env).ms);
  } finally {
    results.down.push(cli(['dev', 'down', '--volumes', '--stack', stack], env).ms);
    rmSync(home, { recursive: true, force: true });
  }
}

const s = (x) => `${(x / 1000).toFixed(2)} s`;
console.log(
  `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()[0].toFixed(1)}, ${runs} runs, engine ${process.env.DOCKER_HOST}`,
);
console.log('| measure | median | min | max | goal |');
console.log('| --- | --- | --- | --- | --- |');
const row = (name, xs, goal = '—') =>
  console.log(`| ${name} | ${s(median(xs))} | ${s(Math.min(...xs))} | ${s(Math.max(...xs))} | ${goal} |`);
for (const [name, xs] of Object.entries(results.components))
  row(`${name} healthy (from the start of the run)`, xs);
row('`dev up --docker` until the proxy serves (total)', results.total);
row('second `dev up` (everything running, no-op)', results.second, '< 1 s');
row('`dev down --volumes`', results.down);
