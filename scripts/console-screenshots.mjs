#!/usr/bin/env node
// Takes the README's screenshots of the console (docs/console-*.png): starts a real admin and two
// proxies on free loopback ports, applies three namespaces (one twice, for a history diff), runs
// a little load through a proxy, and photographs the three main pages in Debian's Chromium.
// Needs `npm run build` first.   node scripts/console-screenshots.mjs
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { DataClient } from '../dist/client/data-client.js';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const home = mkdtempSync(join(tmpdir(), 'prism-shots-'));
const children = [];

function serve(args, ready) {
  const child = spawn(process.execPath, [join(root, 'bin/run.js'), ...args], {
    env: { ...process.env, PRISM_HOME: home },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolveReady, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes(`"msg":"${ready}"`));
      if (line) resolveReady(JSON.parse(line));
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)));
  });
}

const ns = (name, team, type, slot, backend, extra = '') =>
  `namespace: ${name}\nteam: ${team}\ndescription: ${name} of the ${team} team\npatterns:\n  - name: main\n    type: ${type}\n    slots:\n      ${slot}: { backend: ${backend} }\n${extra}`;

try {
  const admin = await serve(
    [
      'admin',
      'serve',
      '--no-auth',
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
      '--heartbeat-interval',
      '500',
    ],
    'prism admin serving',
  );
  const endpoint = `127.0.0.1:${admin.port}`;
  const proxies = [];
  for (const id of ['proxy-a', 'proxy-b'])
    proxies.push(
      await serve(
        [
          'proxy',
          'serve',
          '--admin',
          endpoint,
          '--proxy-id',
          id,
          '--no-auth',
          '--listen',
          '127.0.0.1:0',
          '--metrics-listen',
          '127.0.0.1:0',
        ],
        'prism proxy serving',
      ),
    );
  const dir = mkdtempSync(join(tmpdir(), 'prism-shots-ns-'));
  const files = {
    orders: ns('orders', 'commerce', 'keyvalue', 'store', 'memstore', '    settings: { default_ttl: 15m }\n'),
    carts: ns('carts', 'commerce', 'keyvalue', 'store', 'sqlite'),
    events: ns(
      'events',
      'analytics',
      'producer',
      'sink',
      'memstore',
      '    settings: { topic: events.clicks }\n',
    ),
  };
  const apply = (name, text) => {
    writeFileSync(join(dir, `${name}.yaml`), text);
    execFileSync(
      process.execPath,
      [join(root, 'bin/run.js'), 'namespace', 'apply', join(dir, `${name}.yaml`), '--admin', endpoint],
      {
        env: { ...process.env, PRISM_HOME: home },
        stdio: 'ignore',
      },
    );
  };
  for (const [name, text] of Object.entries(files)) apply(name, text);
  apply('orders', files.orders.replace('15m', '30m'));
  await sleep(1500);

  const owners = JSON.parse(
    execFileSync(
      process.execPath,
      [join(root, 'bin/run.js'), 'namespace', 'list', '--json', '--admin', endpoint],
      {
        env: { ...process.env, PRISM_HOME: home },
      },
    ).toString(),
  );
  const ordersOwner = owners.find((n) => n.name === 'orders').ownerProxy;
  const proxy = proxies[ordersOwner === 'proxy-a' ? 0 : 1];
  const client = new DataClient(`127.0.0.1:${proxy.port}`, { namespace: 'orders' });
  let running = true;
  const load = Promise.all(
    Array.from({ length: 3 }, async (_, w) => {
      for (let i = 0; running; i++) {
        if (i % 40 === 0) await client.get(`missing-${w}`).catch(() => undefined);
        else await client.set(`k-${w}-${i % 100}`, Buffer.from('v'));
        if (i % 200 === 0) await sleep(50 + (i % 7) * 30);
      }
    }),
  );
  await sleep(15_000);

  const browser = await puppeteer.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const base = `http://127.0.0.1:${admin.httpPort}/console`;
  for (const [path, file] of [
    ['namespaces', 'console-namespaces.png'],
    ['namespaces/orders', 'console-namespace.png'],
    ['proxies', 'console-proxies.png'],
  ]) {
    await page.goto(`${base}/${path}`);
    await sleep(1500);
    if (path === 'namespaces/orders') await page.$eval('.history details', (d) => (d.open = true));
    await page.screenshot({ path: join(root, 'docs', file) });
    console.log(`docs/${file}`);
  }
  await browser.close();
  running = false;
  await load;
  client.close();
} finally {
  for (const child of children.reverse()) child.kill('SIGTERM');
}
