import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adminTokenSource } from '../../../src/auth/admin-token.js';

describe('the proxy’s admin token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prism-admin-token-'));
  const file = join(dir, 'token');
  const jwtFile = join(dir, 'jwt');
  const none = join(dir, 'no-k8s-token');
  writeFileSync(file, 'file-token\n', { mode: 0o600 });
  writeFileSync(jwtFile, 'identity-jwt\n');

  it('comes from the token file first, then PRISM_ADMIN_TOKEN, then the service identity JWT', () => {
    const env = { PRISM_ADMIN_TOKEN: 'env-token', PRISM_VAULT_JWT: 'vault-jwt' };
    const fromFile = adminTokenSource({ file, env, kubernetesTokenFile: none });
    expect([fromFile.source, fromFile.token()]).toEqual([file, 'file-token']);
    const fromEnv = adminTokenSource({ env, kubernetesTokenFile: none });
    expect([fromEnv.source, fromEnv.token()]).toEqual(['PRISM_ADMIN_TOKEN', 'env-token']);
    const fromIdentity = adminTokenSource({ jwtFile, env: {}, kubernetesTokenFile: none });
    expect([fromIdentity.source, fromIdentity.token()]).toEqual([jwtFile, 'identity-jwt']);
  });

  it('is absent when there is none, or only AWS credentials (they are no bearer token)', () => {
    const env = { AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'secret' };
    const source = adminTokenSource({ env, kubernetesTokenFile: none });
    expect([source.source, source.token()]).toEqual(['none', undefined]);
  });

  it('is read again on every call, so a rotated file takes effect', () => {
    const rotating = join(dir, 'rotating');
    writeFileSync(rotating, 'first', { mode: 0o600 });
    const source = adminTokenSource({ file: rotating, env: {} });
    expect(source.token()).toBe('first');
    writeFileSync(rotating, 'second', { mode: 0o600 });
    expect(source.token()).toBe('second');
  });

  it('refuses a token file that others may read', () => {
    const loose = join(dir, 'loose');
    writeFileSync(loose, 'token');
    chmodSync(loose, 0o640);
    expect(() => adminTokenSource({ file: loose, env: {} })).toThrow(
      expect.objectContaining({ code: 'E_USAGE', message: expect.stringContaining('(mode 0640)') }),
    );
  });
});
