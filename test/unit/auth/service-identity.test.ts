import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serviceIdentity } from '../../../src/auth/vault-sessions.js';

const aws = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret-key' };

describe('the automatic service identity', () => {
  const dir = mkdtempSync(join(tmpdir(), 'prism-identity-'));
  const k8s = join(dir, 'k8s');
  const none = join(dir, 'none');
  writeFileSync(k8s, 'k8s-jwt\n');

  it('prefers a JWT (file, PRISM_VAULT_JWT, Kubernetes token) to AWS credentials', () => {
    expect(
      serviceIdentity({ env: { ...aws, PRISM_VAULT_JWT: 'env-jwt' }, kubernetesTokenFile: k8s }),
    ).toEqual({
      jwt: 'env-jwt',
      source: 'PRISM_VAULT_JWT',
    });
    expect(serviceIdentity({ env: aws, kubernetesTokenFile: k8s })).toEqual({ jwt: 'k8s-jwt', source: k8s });
  });

  it('falls back to AWS credentials in the environment, logging in at the aws mount', () => {
    expect(serviceIdentity({ env: aws, kubernetesTokenFile: none })).toEqual({
      aws: { credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-key' } },
      mount: 'aws',
      source: 'AWS_ACCESS_KEY_ID',
    });
  });

  it('takes the session token, region, server id and mount from the environment', () => {
    const env = {
      ...aws,
      AWS_SESSION_TOKEN: 'session',
      AWS_REGION: 'eu-west-1',
      PRISM_VAULT_AWS_IAM_SERVER_ID: 'vault.example.com',
      PRISM_VAULT_AWS_MOUNT: 'aws-prod',
    };
    expect(serviceIdentity({ env, kubernetesTokenFile: none })).toEqual({
      aws: {
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-key', sessionToken: 'session' },
        region: 'eu-west-1',
        serverId: 'vault.example.com',
      },
      mount: 'aws-prod',
      source: 'AWS_ACCESS_KEY_ID',
    });
  });

  it('names every way to get an identity when there is none', () => {
    expect(() => serviceIdentity({ env: { AWS_ACCESS_KEY_ID: 'AKID' }, kubernetesTokenFile: none })).toThrow(
      expect.objectContaining({ code: 'E_USAGE', hint: expect.stringContaining('AWS_SECRET_ACCESS_KEY') }),
    );
  });
});
