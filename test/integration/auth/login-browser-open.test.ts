import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevIdp } from '../../../src/auth/dev-idp.js';
import { deviceLogin } from '../../../src/auth/login.js';
import { devicePrompter } from '../../../src/auth/login-prompt.js';
import { DEFAULT_SCOPES, type OidcSettings } from '../../../src/auth/oidc-config.js';
import { TokenCache } from '../../../src/auth/token-cache.js';
import { ensureBuilt, REPO_ROOT } from '../../support/cli.js';
import { approveDeviceCode } from './play-person.js';

/**
 * The device login opens the browser as a convenience: the code and URL are printed either way,
 * and an opener that is missing, fails or throws never fails the login.
 */
describe('device login with a browser opener', () => {
  const idp = new DevIdp();
  let settings: OidcSettings;

  beforeAll(async () => {
    settings = { issuer: await idp.start(), clientId: 'prismctl', scopes: DEFAULT_SCOPES };
  });
  afterAll(() => idp.stop());

  const login = (opener: (url: string) => Promise<boolean>, lines: string[], open = true) =>
    deviceLogin(
      settings,
      new TokenCache(mkdtempSync(join(tmpdir(), 'prism-login-open-'))),
      (prompt) => {
        devicePrompter({ say: (l) => lines.push(l), openBrowser: open, opener })(prompt);
        void approveDeviceCode(prompt.verificationUri, prompt.userCode, 'alice@example.com');
      },
      { intervalSeconds: 0.05 },
    );

  it('completes when the opener rejects, having printed the code and the URL', async () => {
    const lines: string[] = [];
    const tokens = await login(() => Promise.reject(new Error('no opener')), lines);
    expect(tokens.accessToken).toBeTruthy();
    expect(lines[0]).toMatch(/^To log in, open http:\/\/127\.0\.0\.1:\d+\//);
    expect(lines[1]).toMatch(/^and enter the code \S+ \(valid for \d+ minutes\)\.$/);
    expect(lines).not.toContain('(opened in your browser)');
  });

  it('opens the verification URL when allowed, and not with --no-browser', async () => {
    const opened: string[] = [];
    const record = (url: string) => (opened.push(url), Promise.resolve(true));
    await login(record, []);
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/.*device/);
    await login(record, [], false);
    expect(opened).toHaveLength(1);
  });

  it('prismctl login runs the platform opener with the URL and logs in although it fails', async () => {
    await ensureBuilt();
    const bin = mkdtempSync(join(tmpdir(), 'prism-failing-opener-'));
    const record = join(bin, 'opened');
    writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > '${record}'\nexit 3\n`, {
      mode: 0o755,
    });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: bin,
      DISPLAY: ':0',
      PRISM_HOME: mkdtempSync(join(tmpdir(), 'prism-login-cli-')),
    };
    for (const key of ['SSH_CONNECTION', 'SSH_CLIENT', 'SSH_TTY', 'WAYLAND_DISPLAY', 'PRISM_TOKEN'])
      delete env[key];
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'bin/run.js'), 'login', '--issuer', settings.issuer],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    let approving: Promise<void> | undefined;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const url = /To log in, open (\S+)/.exec(stderr)?.[1];
      const code = /enter the code (\S+)/.exec(stderr)?.[1];
      if (url && code && !approving) approving = approveDeviceCode(url, code, 'alice@example.com');
    });
    const exitCode = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(stderr).toContain('logged in as alice@example.com');
    expect(exitCode).toBe(0);
    const printed = /To log in, open (\S+)/.exec(stderr)![1]!;
    expect(existsSync(record)).toBe(true);
    expect(readFileSync(record, 'utf8')).toBe(printed);
  }, 30_000);
});
