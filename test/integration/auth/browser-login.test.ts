import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookieClient } from './play-person.js';
import { browserLogin } from '../../../src/auth/browser-login.js';
import { canOpenBrowser } from '../../../src/auth/open-browser.js';
import { DevIdp, DEV_AUDIENCE } from '../../../src/auth/dev-idp.js';
import { describe as describeLogin, freshAccessToken } from '../../../src/auth/login.js';
import { DEFAULT_SCOPES, type OidcSettings } from '../../../src/auth/oidc-config.js';
import { TokenCache } from '../../../src/auth/token-cache.js';
import { TokenVerifier } from '../../../src/auth/verify.js';
import { ensureBuilt, REPO_ROOT } from '../../support/cli.js';

/**
 * Plays the person in a browser over plain HTTP: follows the authorization URL, signs in as
 * `login` on the dev IdP's login page, consents (or aborts), and follows the redirect back to the
 * loopback callback.
 */
async function followInBrowser(authorizationUrl: string, login: string, options: { deny?: boolean } = {}) {
  const request = cookieClient();
  const settle = async (url: string, res: Response): Promise<{ url: string; body: string }> => {
    while (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location')!, url).toString();
      res = await request(url);
    }
    if (res.status >= 400) throw new Error(`answered ${res.status} at ${url}`);
    return { url, body: await res.text() };
  };
  let page = await settle(authorizationUrl, await request(authorizationUrl));
  for (let step = 0; step < 4; step++) {
    const prompt = /name="prompt" value="(\w+)"/.exec(page.body)?.[1];
    if (!prompt) return page.body;
    const interaction = page.url;
    if (options.deny && prompt === 'consent') {
      page = await settle(`${interaction}/abort`, await request(`${interaction}/abort`));
      continue;
    }
    const form: Record<string, string> = prompt === 'login' ? { prompt, login, password: 'dev' } : { prompt };
    page = await settle(interaction, await request(interaction, form));
  }
  throw new Error('the IdP kept asking');
}

describe('browser login (authorization code + PKCE) against the dev IdP', () => {
  const idp = new DevIdp();
  let settings: OidcSettings;
  let home: string;

  beforeAll(async () => {
    settings = { issuer: await idp.start(), clientId: 'prismctl', scopes: DEFAULT_SCOPES };
    home = mkdtempSync(join(tmpdir(), 'prism-browser-login-'));
  });
  afterAll(async () => {
    await idp.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('logs bob in on a loopback callback and caches a JWT the proxy can verify, with a refresh token', async () => {
    const cache = new TokenCache(home);
    let landing: Promise<string> | undefined;
    const tokens = await browserLogin(settings, cache, (prompt) => {
      expect(prompt.redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
      const url = new URL(prompt.url);
      expect(url.searchParams.get('code_challenge_method')).toBe('S256');
      expect(url.searchParams.get('redirect_uri')).toBe(prompt.redirectUri);
      landing = followInBrowser(prompt.url, 'bob@example.com');
    });
    expect(await landing).toContain('You are logged in.');
    expect(statSync(cache.file).mode & 0o777).toBe(0o600);
    expect(describeLogin(tokens)).toMatchObject({ subject: 'bob@example.com', groups: ['analytics'] });
    const verifier = new TokenVerifier({ issuer: settings.issuer, audiences: [DEV_AUDIENCE] });
    expect(await verifier.verify(tokens.accessToken)).toMatchObject({ email: 'bob@example.com' });

    cache.write({ ...tokens, expiresAt: Math.floor(Date.now() / 1000) + 10 });
    expect((await freshAccessToken(settings, cache)).accessToken).not.toBe(tokens.accessToken);
  });

  it('reports a denied consent clearly', async () => {
    const err = await browserLogin(settings, new TokenCache(home), (prompt) => {
      void followInBrowser(prompt.url, 'bob@example.com', { deny: true });
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'E_UNAUTHENTICATED',
      message: 'the login was denied at the identity provider',
    });
  });

  it('gives up when the browser never comes back', async () => {
    const err = await browserLogin(settings, new TokenCache(home), () => undefined, { timeoutMs: 200 }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'E_UNAUTHENTICATED',
      message: 'the browser did not come back to prismctl in time',
    });
  });

  it('opens a browser only with a display and not over SSH', () => {
    expect(canOpenBrowser({ DISPLAY: ':0' })).toBe(true);
    expect(canOpenBrowser({})).toBe(false);
    expect(canOpenBrowser({ DISPLAY: ':0', SSH_CONNECTION: '10.0.0.1 2 10.0.0.2 22' })).toBe(false);
  });

  it('prismctl login --browser prints the URL, waits for the callback and reports who logged in', async () => {
    await ensureBuilt();
    const cliHome = mkdtempSync(join(tmpdir(), 'prism-browser-cli-'));
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'bin/run.js'), 'login', '--browser', '--issuer', settings.issuer, '--json'],
      { env: { ...process.env, PRISM_HOME: cliHome, DISPLAY: '', NO_COLOR: '1' } },
    );
    let stdout = '';
    let stderr = '';
    let started = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const followed = new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const url = /To log in, open (\S+)\n/.exec(stderr)?.[1];
        if (url && !started) {
          started = true;
          followInBrowser(url, 'dev@local.prism').then(resolve, reject);
        }
      });
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    await followed;
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ subject: 'dev@local.prism', groups: ['prism-admins'] });
    expect(new TokenCache(cliHome).read()?.issuer).toBe(settings.issuer);
  }, 30_000);
});
