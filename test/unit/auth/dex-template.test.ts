import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { DEV_USERS } from '../../../src/auth/dev-idp.js';

const root = join(import.meta.dirname, '../../..');

interface DexConfig {
  issuer: string;
  oauth2: { grantTypes: string[] };
  staticClients: { id: string; public?: boolean; secret?: string; redirectURIs?: string[] }[];
  staticPasswords: { email: string; groups?: string[] }[];
}

describe('templates/dex/config.yaml', () => {
  const config = parse(readFileSync(join(root, 'templates/dex/config.yaml'), 'utf8')) as DexConfig;

  it('serves the issuer prismctl logs in against', () => {
    expect(config.issuer).toBe('http://127.0.0.1:5556/dex');
  });

  it('names a public prismctl client, without a secret, with the device flow enabled', () => {
    const client = config.staticClients.find((c) => c.id === 'prismctl');
    expect(client).toMatchObject({ id: 'prismctl', public: true });
    expect(client?.secret).toBeUndefined();
    expect(client?.redirectURIs).toBeUndefined();
    expect(config.oauth2.grantTypes).toContain('urn:ietf:params:oauth:grant-type:device_code');
  });

  it('has the same users and groups as the development provider', () => {
    expect(config.staticPasswords.map((u) => ({ email: u.email, groups: u.groups }))).toEqual(
      DEV_USERS.map((u) => ({ email: u.email, groups: u.groups })),
    );
  });
});
