#!/usr/bin/env node
// Benchmark (not a test) of the web console's cost to the admin (issue 22): a real
// `prismctl admin serve`, N real `prismctl proxy serve` following it (heartbeats with KPIs), M
// namespaces, light load through one proxy, and T console tabs open in Chromium (headless, through
// puppeteer-core), spread over the namespaces list, a namespace page and the proxies page. Prints
// the admin process's CPU (user + system, from /proc/<pid>/stat) as a share of one core over the
// measuring window, against the same admin with no tab open, measured in the same run.
// Run after `npm run build`:
//   node bench/console/index.js [--proxies 5] [--tabs 10] [--namespaces 50] [--seconds 30]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import puppeteer from 'puppeteer-core';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const { values } = parseArgs({
  options: {
    proxies: { type: 'string', default: '5' },
    tabs: { type: 'string', default: '10' },
    namespaces: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '30' },
    'heartbeat-interval': { type: 'string', default: '2000' },
  },
});
const proxyCount = Number(values.proxies);
const tabCount = Number(values.tabs);
const namespaceCount = Number(values.namespaces);
const seconds = Number(values.seconds);

const { AdminClient } = await import(join(root, 'dist/client/admin-client.js'));
const { DataClient } = await import(join(root, 'dist/client/data-client.js'));
const { validateSources } = await import(join(root, 'dist/config/validate.js'));

const home = mkdtempSync(join(tmpdir(), 'prism-bench-console-'));
const children = [];

function serve(args, ready) {
  const child = spawn(process.execPath, [join(root, 'bin/run.js'), ...args], {
    env: { ...process.env, PRISM_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolveReady, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes(`"msg":"${ready}"`));
      if (line) resolveReady({ ...JSON.parse(line), pid: child.pid });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}:\n${out}`)));
  });
}

const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

async function measure(pid, label) {
  const startCpu = cpuSeconds(pid);
  const start = performance.now();
  await sleep(seconds * 1000);
  const share = (cpuSeconds(pid) - startCpu) / ((performance.now() - start) / 1000);
  console.log(`${label.padEnd(44)} admin CPU ${(share * 100).toFixed(2)} % of one core`);
  return share;
}

console.log(
  `machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log(
  `${proxyCount} proxies, ${namespaceCount} namespaces, ${tabCount} tabs, heartbeat ${values['heartbeat-interval']} ms, ${seconds} s windows`,
);

let browser;
let running = true;
let load;
try {
  const admin = await serve(
    [
      ...['admin', 'serve', '--no-auth', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
      ...['--heartbeat-interval', values['heartbeat-interval']],
    ],
    'prism admin serving',
  );
  const endpoint = `127.0.0.1:${admin.port}`;
  const client = new AdminClient(endpoint, { timeoutMs: 10_000 });
  for (let i = 0; i < namespaceCount; i++) {
    const text = `namespace: bench-${i}\nteam: team-${i % 7}\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`;
    const request = validateSources([{ file: `bench-${i}.yaml`, text }]).loaded[0].request;
    await client.apply({ namespace: request, dryRun: false, source: 'bench' });
  }
  client.close();
  const proxies = [];
  for (let i = 0; i < proxyCount; i++)
    proxies.push(
      await serve(
        [
          ...['proxy', 'serve', '--admin', endpoint, '--proxy-id', `bench-proxy-${i}`, '--no-auth'],
          ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
        ],
        'prism proxy serving',
      ),
    );
  await sleep(3000);
  const owners = await new AdminClient(endpoint, { timeoutMs: 10_000 }).list();
  const ns = owners.namespaces[0];
  const proxy = proxies.find((_, i) => `bench-proxy-${i}` === ns.ownerProxy) ?? proxies[0];
  const data = new DataClient(`127.0.0.1:${proxy.port}`, { namespace: ns.name });
  // Light load (about 100 calls/s), so that the KPIs have something to say.
  load = (async () => {
    for (let i = 0; running; i++) {
      await data.set(`k-${i % 100}`, Buffer.from('v')).catch(() => undefined);
      await sleep(10);
    }
    data.close();
  })();

  await sleep(2000);
  const idle = await measure(admin.pid, 'no console tab open');

  browser = await puppeteer.launch({
    executablePath: process.env.PRISM_TEST_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  const base = `http://127.0.0.1:${admin.httpPort}/console`;
  const paths = ['namespaces', `namespaces/${ns.name}`, 'proxies'];
  for (let i = 0; i < tabCount; i++) {
    const page = await browser.newPage();
    await page.goto(`${base}/${paths[i % paths.length]}`);
  }
  await sleep(2000);
  const open = await measure(admin.pid, `${tabCount} console tabs open (live every second)`);
  console.log(
    `console's share: ${((open - idle) * 100).toFixed(2)} % of one core; total ${(open * 100).toFixed(2)} % (target < 5 %)`,
  );
} finally {
  running = false;
  await load;
  await browser?.close();
  for (const child of children.reverse()) child.kill('SIGTERM');
}
