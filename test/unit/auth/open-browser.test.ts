import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canOpenBrowser, openBrowser, openerCommand } from '../../../src/auth/open-browser.js';

const ssh = { SSH_CONNECTION: '10.0.0.1 50000 10.0.0.2 22' };

describe('whether prismctl login opens a browser', () => {
  const cases: [string, NodeJS.Platform, NodeJS.ProcessEnv, boolean][] = [
    ['Linux with an X display', 'linux', { DISPLAY: ':0' }, true],
    ['Linux with Wayland', 'linux', { WAYLAND_DISPLAY: 'wayland-0' }, true],
    ['Linux without a display (a server, a container)', 'linux', {}, false],
    ['Linux with an empty DISPLAY', 'linux', { DISPLAY: '' }, false],
    ['Linux with a display forwarded over SSH', 'linux', { DISPLAY: 'localhost:10.0', ...ssh }, false],
    ['Linux over SSH with only SSH_TTY set', 'linux', { DISPLAY: ':0', SSH_TTY: '/dev/pts/1' }, false],
    [
      'Linux over SSH with only SSH_CLIENT set',
      'linux',
      { DISPLAY: ':0', SSH_CLIENT: '10.0.0.1 50000 22' },
      false,
    ],
    ['FreeBSD with a display', 'freebsd', { DISPLAY: ':0' }, true],
    ['macOS, no DISPLAY needed', 'darwin', {}, true],
    ['macOS over SSH', 'darwin', ssh, false],
    ['Windows, no DISPLAY needed', 'win32', {}, true],
    ['Windows over SSH', 'win32', { SSH_TTY: 'windows-pty' }, false],
  ];
  it.each(cases)('%s → %s', (_label, platform, env, expected) => {
    expect(canOpenBrowser(env, platform)).toBe(expected);
  });
});

describe('the platform opener', () => {
  const url = 'https://idp.example.com/device?user_code=ABCD-EFGH&x=1';

  it('is open on macOS, start on Windows (URL quoted so & does not end the command), xdg-open elsewhere', () => {
    expect(openerCommand(url, 'darwin')).toEqual({ command: 'open', args: [url], verbatim: false });
    expect(openerCommand(url, 'win32')).toEqual({
      command: 'cmd',
      args: ['/c', 'start', '""', `"${url}"`],
      verbatim: true,
    });
    expect(openerCommand(url, 'linux')).toEqual({ command: 'xdg-open', args: [url], verbatim: false });
  });

  it('runs xdg-open with the URL when there is a display', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'prism-opener-'));
    const record = join(bin, 'opened');
    writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > '${record}'\n`, { mode: 0o755 });
    expect(await openBrowser(url, { env: { PATH: bin, DISPLAY: ':0' }, platform: 'linux' })).toBe(true);
    // The opener runs detached: the file can exist before printf has written into it.
    const opened = () => (existsSync(record) ? readFileSync(record, 'utf8') : '');
    for (let i = 0; i < 100 && opened() !== url; i++) await new Promise((r) => setTimeout(r, 20));
    expect(opened()).toBe(url);
  });

  it('reports false, without throwing, when the opener is missing', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'prism-no-opener-'));
    expect(await openBrowser(url, { env: { PATH: empty, DISPLAY: ':0' }, platform: 'linux' })).toBe(false);
  });

  it('does not run anything without a display or over SSH', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'prism-opener-'));
    const record = join(bin, 'opened');
    writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\ntouch '${record}'\n`, { mode: 0o755 });
    expect(await openBrowser(url, { env: { PATH: bin }, platform: 'linux' })).toBe(false);
    expect(await openBrowser(url, { env: { PATH: bin, DISPLAY: ':0', ...ssh }, platform: 'linux' })).toBe(
      false,
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(record)).toBe(false);
  });
});
