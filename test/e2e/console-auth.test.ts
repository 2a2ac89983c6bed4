import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIdp, DEV_AUDIENCE } from '../../src/auth/dev-idp.js';
import { startAdmin, type RunningAdmin } from '../support/admin-process.js';
import { launchBrowser, rawTextOf, textOf } from '../support/browser.js';
import { ensureBuilt, runCli } from '../support/cli.js';
import { loginAs } from '../support/dev-login.js';
import { uniqueName } from '../support/services.js';

/**
 * The console with auth on: people log in in the browser at the development OpenID provider
 * (authorization code + PKCE), readers read and are refused an apply, admins apply a pasted
 * namespace and see the same validation report as the CLI.
 */
describe('the web console with auth on', () => {
  const idp = new DevIdp();
  const devHome = mkdtempSync(join(tmpdir(), 'prism-console-auth-dev-'));
  const name = uniqueName('console-auth');
  let admin: RunningAdmin;
  let browser: Browser;
  let base: string;

  /** Plays the person at the provider's login and consent pages, back to the console. */
  const logIn = async (page: Page, email: string, path = '/namespaces') => {
    await page.goto(`${base}${path}`);
    for (let step = 0; step < 4 && !page.url().startsWith(base); step++) {
      const prompt = await page.$eval(
        'input[name="prompt"]',
        (e) => (e as unknown as { value: string }).value,
      );
      if (prompt === 'login') {
        await page.type('input[name="login"]', email);
        await page.type('input[name="password"]', 'any');
      }
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
      if (page.url().includes('/console/callback')) await page.waitForNavigation();
    }
    expect(page.url()).toBe(`${base}${path}`);
  };

  const newPage = async () => (await browser.createBrowserContext()).newPage();

  beforeAll(async () => {
    await ensureBuilt();
    const issuer = await idp.start();
    await loginAs(idp, 'dev@local.prism', devHome);
    admin = await startAdmin({
      extraArgs: [
        ...['--auth-issuer', issuer, '--auth-audience', DEV_AUDIENCE],
        ...['--auth-admin-group', 'prism-admins', '--auth-reader-group', 'analytics'],
      ],
    });
    base = `http://127.0.0.1:${admin.httpPort}/console`;
    const file = join(mkdtempSync(join(tmpdir(), 'prism-console-auth-')), `${name}.yaml`);
    writeFileSync(file, namespaceYaml(name));
    const applied = await runCli(['namespace', 'apply', file, '--admin', admin.endpoint], {
      env: { PRISM_HOME: devHome, PRISM_TOKEN: '' },
    });
    expect(applied.code).toBe(0);
    browser = await launchBrowser();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    expect(await admin?.stop()).toBe(0);
    await idp.stop();
  });

  it('sends a visitor without a session to the provider and refuses the event stream', async () => {
    const res = await fetch(`${base}/namespaces`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/login?return=%2Fconsole%2Fnamespaces');
    const login = await fetch(`${base}/login`, { redirect: 'manual' });
    const target = new URL(login.headers.get('location')!);
    expect(target.origin).toBe(idp.issuer);
    expect(target.searchParams.get('code_challenge_method')).toBe('S256');
    expect(target.searchParams.get('redirect_uri')).toBe(`${base}/callback`);
    expect((await fetch(`${base}/events/namespaces`)).status).toBe(401);
  });

  it('logs a reader in with a HttpOnly, Secure, SameSite=Strict session cookie; the reader reads and is refused an apply', async () => {
    const page = await newPage();
    await logIn(page, 'bob@example.com');
    const session = (await page.cookies()).find((c) => c.name === 'prism_console');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/console' });
    expect(await textOf(page, '.who span')).toBe('bob@example.com');
    expect(await textOf(page, `tr[data-namespace="${name}"] th`)).toBe(name);
    expect(await page.$('nav a[href="/console/apply"]')).toBeNull();

    // Live with the session too: what an admin applies from the CLI appears without a reload.
    const later = uniqueName('live');
    const file = join(mkdtempSync(join(tmpdir(), 'prism-console-auth-live-')), `${later}.yaml`);
    writeFileSync(file, namespaceYaml(later));
    const applied = await runCli(['namespace', 'apply', file, '--admin', admin.endpoint], {
      env: { PRISM_HOME: devHome, PRISM_TOKEN: '' },
    });
    expect(applied.code).toBe(0);
    await page.waitForSelector(`tr[data-namespace="${later}"]`, { timeout: 10_000 });

    const form = await page.goto(`${base}/apply`);
    expect(form?.status()).toBe(403);
    expect(await textOf(page, 'main p')).toBe(
      'bob@example.com may not write on the control plane (ApplyNamespace)',
    );

    // A POST with the reader's own valid form token is refused by rights, not by CSRF.
    const csrf = await page.$eval('input[name="csrf"]', (e) => (e as unknown as { value: string }).value);
    const refused = await postForm(page, `${base}/apply`, {
      csrf,
      yaml: namespaceYaml(uniqueName('refused')),
    });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('bob@example.com may not write on the control plane (ApplyNamespace)');
  });

  it('lets an admin apply a pasted namespace, with the CLI’s validation report first', async () => {
    const page = await newPage();
    await logIn(page, 'dev@local.prism', '/apply');
    expect(await textOf(page, '.who span')).toBe('dev@local.prism');

    const invalid = `namespace: Bad_Name\nteam: commerce\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`;
    const cli = await runCli(['namespace', 'validate', '-'], { input: invalid });
    expect(cli.code).toBe(1);
    await page.type('#yaml', invalid);
    await Promise.all([page.waitForNavigation(), page.click('form.apply button[type="submit"]')]);
    expect(await rawTextOf(page, '#report')).toBe(cli.stdout.replaceAll('<stdin>', '<pasted>'));
    expect(await textOf(page, '#result-h')).toBe('Not applied');

    const created = uniqueName('pasted');
    await page.$eval('#yaml', (e) => ((e as unknown as { value: string }).value = ''));
    await page.type('#yaml', namespaceYaml(created));
    await Promise.all([page.waitForNavigation(), page.click('form.apply button[type="submit"]')]);
    expect(await textOf(page, '#result-h')).toBe('Applied');
    expect(await rawTextOf(page, '#report')).toMatch(
      new RegExp(`^${created}: created — version 1, partition \\d+\\n  cache\\.store → memstore memory://$`),
    );
    const history = await runCli(['namespace', 'history', created, '--json', '--admin', admin.endpoint], {
      env: { PRISM_HOME: devHome, PRISM_TOKEN: '' },
    });
    expect(JSON.parse(history.stdout)).toEqual([
      expect.objectContaining({ action: 'create', principal: 'dev@local.prism', source: 'console' }),
    ]);
  });

  it('refuses a form whose CSRF token is not the session’s, and logs out with the right one', async () => {
    const page = await newPage();
    await logIn(page, 'dev@local.prism', '/apply');
    const res = await postForm(page, `${base}/apply`, {
      csrf: 'forged',
      yaml: namespaceYaml(uniqueName('forged')),
    });
    expect(res.status).toBe(403);
    expect(res.text).toContain('The form token does not match your session (CSRF)');

    // The session is still good; logging out (a form with the right token) ends it.
    await page.reload();
    expect(await textOf(page, '.who span')).toBe('dev@local.prism');
    await Promise.all([page.waitForNavigation(), page.click('.who button[type="submit"]')]);
    expect((await page.cookies()).find((c) => c.name === 'prism_console')).toBeUndefined();
    expect(page.url().startsWith(idp.issuer)).toBe(true);
  });
});

function namespaceYaml(name: string): string {
  return `namespace: ${name}\nteam: analytics\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: memstore }\n`;
}

/** POSTs a urlencoded form from inside the page (its cookies go along, as a form submit's would). */
async function postForm(
  page: Page,
  url: string,
  form: Record<string, string>,
): Promise<{ status: number; text: string }> {
  return page.evaluate(
    async (target, body) => {
      const res = await fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body).toString(),
      });
      return { status: res.status, text: await res.text() };
    },
    url,
    form,
  );
}
