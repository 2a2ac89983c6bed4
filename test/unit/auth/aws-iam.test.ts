import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  GET_CALLER_IDENTITY_BODY,
  awsCredentialsFromEnv,
  awsIamLoginFields,
  signV4,
} from '../../../src/auth/aws-iam.js';

// The example credentials and date of AWS's Signature Version 4 test suite (aws-sig-v4-test-suite).
const suite = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const suiteScope = { region: 'us-east-1', service: 'service', now: new Date('2015-08-30T12:36:00Z') };
const suiteToken =
  'AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==';

const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

describe('SigV4 signing', () => {
  it('matches the AWS test suite vector post-vanilla-query', () => {
    const headers = signV4(
      { method: 'POST', url: new URL('https://example.amazonaws.com/?Param1=value1'), headers: {}, body: '' },
      suite,
      suiteScope,
    );
    expect(headers['X-Amz-Date']).toBe('20150830T123600Z');
    expect(headers.Authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11',
    );
  });

  it('matches the AWS test suite vector get-vanilla-query-order-value (query sorted by value)', () => {
    const headers = signV4(
      {
        method: 'GET',
        url: new URL('https://example.amazonaws.com/?Param1=value2&Param1=value1'),
        headers: {},
        body: '',
      },
      suite,
      suiteScope,
    );
    expect(headers.Authorization).toMatch(
      /Signature=5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694$/,
    );
  });

  it('signs the session token: AWS test suite vector post-sts-header-before', () => {
    const headers = signV4(
      { method: 'POST', url: new URL('https://example.amazonaws.com/'), headers: {}, body: '' },
      { ...suite, sessionToken: suiteToken },
      suiteScope,
    );
    expect(headers['X-Amz-Security-Token']).toBe(suiteToken);
    expect(headers.Authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead',
    );
  });
});

describe('the Vault aws auth login fields', () => {
  const now = new Date('2024-03-01T10:20:30Z');

  it('carry a POST of GetCallerIdentity to the global STS endpoint, base64-encoded', () => {
    const fields = awsIamLoginFields(suite, { now });
    expect(fields.iam_http_request_method).toBe('POST');
    expect(decode(fields.iam_request_url)).toBe('https://sts.amazonaws.com/');
    expect(decode(fields.iam_request_body)).toBe('Action=GetCallerIdentity&Version=2011-06-15');
    const headers = JSON.parse(decode(fields.iam_request_headers)) as Record<string, string[]>;
    expect(Object.keys(headers).sort()).toEqual(['Authorization', 'Content-Type', 'X-Amz-Date']);
    expect(headers['X-Amz-Date']).toEqual(['20240301T102030Z']);
    expect(headers.Authorization![0]).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20240301\/us-east-1\/sts\/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=[0-9a-f]{64}$/,
    );
  });

  it('carry a signature computed by the documented steps', () => {
    const fields = awsIamLoginFields(suite, { now, serverId: 'vault.example.com' });
    const headers = JSON.parse(decode(fields.iam_request_headers)) as Record<string, string[]>;
    expect(headers['X-Vault-AWS-IAM-Server-ID']).toEqual(['vault.example.com']);
    // Step by step, as the SigV4 documentation lays it out.
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const mac = (k: string | Buffer, s: string) => createHmac('sha256', k).update(s).digest();
    const canonicalRequest = [
      'POST',
      '/',
      '',
      'content-type:application/x-www-form-urlencoded; charset=utf-8',
      'host:sts.amazonaws.com',
      'x-amz-date:20240301T102030Z',
      'x-vault-aws-iam-server-id:vault.example.com',
      '',
      'content-type;host;x-amz-date;x-vault-aws-iam-server-id',
      sha(GET_CALLER_IDENTITY_BODY),
    ].join('\n');
    const stringToSign = `AWS4-HMAC-SHA256\n20240301T102030Z\n20240301/us-east-1/sts/aws4_request\n${sha(canonicalRequest)}`;
    const key = mac(
      mac(mac(mac(`AWS4${suite.secretAccessKey}`, '20240301'), 'us-east-1'), 'sts'),
      'aws4_request',
    );
    expect(headers.Authorization![0]).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240301/us-east-1/sts/aws4_request, ' +
        'SignedHeaders=content-type;host;x-amz-date;x-vault-aws-iam-server-id, ' +
        `Signature=${mac(key, stringToSign).toString('hex')}`,
    );
  });

  it('sign for the regional STS endpoint when a region is given', () => {
    const fields = awsIamLoginFields({ ...suite, sessionToken: 'tok' }, { now, region: 'eu-west-1' });
    expect(decode(fields.iam_request_url)).toBe('https://sts.eu-west-1.amazonaws.com/');
    const headers = JSON.parse(decode(fields.iam_request_headers)) as Record<string, string[]>;
    expect(headers['X-Amz-Security-Token']).toEqual(['tok']);
    expect(headers.Authorization![0]).toContain('/20240301/eu-west-1/sts/aws4_request');
  });

  it('never carry the secret key', () => {
    const fields = awsIamLoginFields(suite, { now });
    expect(JSON.stringify(fields)).not.toContain(suite.secretAccessKey);
    expect(decode(fields.iam_request_headers)).not.toContain(suite.secretAccessKey);
  });
});

describe('AWS credentials from the environment', () => {
  it('need both the access key id and the secret key', () => {
    expect(awsCredentialsFromEnv({})).toBeUndefined();
    expect(awsCredentialsFromEnv({ AWS_ACCESS_KEY_ID: 'AKID' })).toBeUndefined();
    expect(awsCredentialsFromEnv({ AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 's' })).toEqual({
      accessKeyId: 'AKID',
      secretAccessKey: 's',
    });
    expect(
      awsCredentialsFromEnv({
        AWS_ACCESS_KEY_ID: 'AKID',
        AWS_SECRET_ACCESS_KEY: 's',
        AWS_SESSION_TOKEN: 't',
      }),
    ).toEqual({ accessKeyId: 'AKID', secretAccessKey: 's', sessionToken: 't' });
  });
});
