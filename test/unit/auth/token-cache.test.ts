import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TokenCache } from '../../../src/auth/token-cache.js';

const tokens = { issuer: 'http://127.0.0.1:1', clientId: 'prismctl', accessToken: 'a.b.c', expiresAt: 1 };

describe('TokenCache', () => {
  let home = '';
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  it('writes the file 0600 in a 0700 directory and reads it back', () => {
    home = join(mkdtempSync(join(tmpdir(), 'prism-cache-')), 'home');
    const cache = new TokenCache(home);
    cache.write(tokens);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    expect(statSync(cache.file).mode & 0o777).toBe(0o600);
    expect(cache.read()).toEqual(tokens);
  });

  it('refuses a cache readable by others, with a message that names the fix', () => {
    home = mkdtempSync(join(tmpdir(), 'prism-cache-'));
    const cache = new TokenCache(home);
    cache.write(tokens);
    chmodSync(cache.file, 0o644);
    expect(() => cache.read()).toThrow(
      expect.objectContaining({ code: 'E_UNAUTHENTICATED', hint: expect.stringContaining('chmod 600') }),
    );
  });

  it('reads nothing when there is no cache', () => {
    home = mkdtempSync(join(tmpdir(), 'prism-cache-'));
    expect(new TokenCache(home).read()).toBeUndefined();
  });
});
