import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataClient } from '../../src/client/data-client.js';
import { startAdmin, type RunningAdmin } from '../support/admin-process.js';
import { launchBrowser, rawTextOf, textOf } from '../support/browser.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import { startPrismServer, type RunningServer } from '../support/server-process.js';
import { uniqueName } from '../support/services.js';

/**
 * The console in a real browser (Debian's Chromium, headless, driven by puppeteer-core) against a
 * real `admin serve` and a real `proxy serve` that follows it: what the CLI and the data plane do
 * shows up on open pages without a reload.
 */
describe('the web console', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prism-console-'));
  const name = uniqueName('console');
  const proxyId = uniqueName('proxy');
  let admin: RunningAdmin;
  let proxy: RunningServer;
  let browser: Browser;
  let page: Page;
  let base: string;

  beforeAll(async () => {
    await ensureBuilt();
    admin = await startAdmin({ extraArgs: ['--heartbeat-interval', '500'] });
    base = `http://127.0.0.1:${admin.httpPort}/console`;
    proxy = await startPrismServer(
      [
        ...['proxy', 'serve', '--admin', admin.endpoint, '--proxy-id', proxyId, '--no-auth'],
        ...['--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'],
      ],
      'prism proxy serving',
    );
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    expect(await proxy?.stop()).toBe(0);
    expect(await admin?.stop()).toBe(0);
  });

  it('shows a namespace applied from the CLI without reloading the page', async () => {
    await page.goto(`${base}/namespaces`);
    expect(await page.title()).toBe('Namespaces · Prism console');
    expect(await page.$(`tr[data-namespace="${name}"]`)).toBeNull();
    // A reload would drop this mark.
    await page.evaluate(() => ((globalThis as unknown as { mark: number }).mark = 42));

    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      `namespace: ${name}\nteam: console-team\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`,
    );
    const applied = await runCli(['namespace', 'apply', file, '--admin', admin.endpoint]);
    expect(applied.code).toBe(0);

    await page.waitForSelector(`tr[data-namespace="${name}"]`, { timeout: 10_000 });
    expect(await page.evaluate(() => (globalThis as unknown as { mark?: number }).mark)).toBe(42);
    const row = `tr[data-namespace="${name}"]`;
    expect(await textOf(page, `${row} th`)).toBe(name);
    expect(await textOf(page, `${row} td:nth-of-type(1)`)).toBe('console-team');
    expect(await textOf(page, `${row} td:nth-of-type(2)`)).toBe('1');
    expect(await textOf(page, `${row} td:nth-of-type(3)`)).toBe('keyvalue');
    await eventually('the owner proxy is shown', async () =>
      expect(await textOf(page, `${row} td:nth-of-type(5)`)).toBe(proxyId),
    );
  });

  it('shows the request rate move while load runs through the proxy, and fall back after', async () => {
    await page.goto(`${base}/namespaces/${name}`);
    const rps = async () => Number.parseFloat(await textOf(page, '#kpis-live [data-kpi="rps"]')) || 0;
    expect(await rps()).toBe(0);
    const client = new DataClient(`127.0.0.1:${proxy.ready.port as number}`, { namespace: name });
    // The console shows the admin's assignment at once; the proxy serves it from its next heartbeat.
    await eventually('the proxy serves the namespace', () => client.set('probe', Buffer.from('v')), {
      timeoutMs: 10_000,
    });
    let running = true;
    const load = Promise.all(
      Array.from({ length: 4 }, async (_, worker) => {
        for (let i = 0; running; i++) await client.set(`k-${worker}-${i % 50}`, Buffer.from('v'));
      }),
    );
    try {
      // The window the load starts in may still hold a probe the proxy refused before its heartbeat
      // gave it the namespace (UNAVAILABLE); the load itself throws on any error, so every later
      // window shows 0 %.
      await eventually(
        'the rate rises above 20 req/s with no errors in the window',
        async () => {
          expect(await rps()).toBeGreaterThan(20);
          expect(await textOf(page, '#kpis-live [data-kpi="errors"]')).toBe('0 %');
        },
        { timeoutMs: 15_000 },
      );
      expect(await textOf(page, '#kpis-live [data-kpi="p99"]')).toMatch(/^\d+(\.\d+)? ms$/);
      expect(await page.$eval('#kpis-live svg polyline', (e) => e.getAttribute('points'))).toMatch(/,/);
    } finally {
      running = false;
      await load;
      client.close();
    }
    await eventually('the rate falls back to 0', async () => expect(await rps()).toBe(0), {
      timeoutMs: 15_000,
    });
  });

  it('lists the proxy as live, owning all 256 partitions and serving the namespace', async () => {
    await page.goto(`${base}/proxies`);
    const row = `tr[data-proxy="${proxyId}"]`;
    expect(await textOf(page, `${row} [data-field="state"]`)).toBe('live');
    expect(await textOf(page, `${row} [data-field="partitions"]`)).toBe('256');
    expect(await textOf(page, `${row} td:nth-of-type(3)`)).toBe('0.1.0');
    expect(await textOf(page, `${row} td:nth-of-type(7)`)).toContain(name);
  });

  it('fits a phone width (wide tables scroll in their own box) and starts keyboard users at a skip link', async () => {
    const phone = await browser.newPage();
    try {
      await phone.setViewport({ width: 390, height: 844 });
      await phone.goto(`${base}/proxies`);
      expect(await phone.$eval('html', (e) => e.scrollWidth)).toBe(390);
      expect(await phone.$eval('.scroll', (e) => e.scrollWidth > e.clientWidth)).toBe(true);
      await phone.keyboard.press('Tab');
      expect(await phone.$eval(':focus', (e) => e.textContent)).toBe('Skip to content');
      await phone.keyboard.press('Tab');
      expect(await phone.$eval(':focus', (e) => e.textContent)).toBe('Namespaces');
      expect(await phone.$eval('label[for="q"]', (e) => e.textContent).catch(() => 'none')).toBe('none');
      await phone.goto(`${base}/namespaces`);
      expect(await textOf(phone, 'label[for="q"]')).toBe('Search by name or team');
    } finally {
      await phone.close();
    }
  });

  it('reads without JavaScript: the declaration, the slot bindings and the history with its diff', async () => {
    const plain = await browser.newPage();
    await plain.setJavaScriptEnabled(false);
    try {
      await plain.goto(`${base}/namespaces?q=console-team`);
      expect(await textOf(plain, `tr[data-namespace="${name}"] th`)).toBe(name);
      await plain.goto(`${base}/namespaces/${name}`);
      expect(await rawTextOf(plain, 'pre.yaml')).toContain(`namespace: ${name}\nteam: console-team`);
      expect(await textOf(plain, 'table tbody tr')).toBe('cache keyvalue v1 store memstore memory:// –');
      expect(await textOf(plain, '.history summary')).toMatch(
        /^create v0 → v1 by anonymous at \d{4}-\d\d-\d\d /,
      );
      expect(await rawTextOf(plain, '.history pre.diff')).toContain(`+namespace: ${name}`);
    } finally {
      await plain.close();
    }
  });
});
