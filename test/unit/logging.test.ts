import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, LOG_LEVEL_ENV, logLevel } from '../../src/logging.js';

/** A logger writing into an array, one parsed JSON object per line. */
function capture(level?: string) {
  const lines: string[] = [];
  const logger = createLogger('prism-test', {
    ...(level !== undefined ? { level } : {}),
    destination: { write: (line: string) => void lines.push(line) },
  });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const SECRETS = {
  bearer: 'Bearer eyJhbGciOiJFUzI1NiJ9.secret-jwt.sig',
  token: 'hvs.vault-token-value',
  password: 'pg-password-value',
  secret: 'client-secret-value',
  vaultHeader: 'hvs.header-token-value',
  refresh: 'refresh-token-value',
  cookie: 'session=cookie-value',
};

describe('createLogger', () => {
  const saved = process.env[LOG_LEVEL_ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[LOG_LEVEL_ENV];
    else process.env[LOG_LEVEL_ENV] = saved;
  });

  it('writes [Redacted] in place of authorization headers, tokens, passwords and secrets', () => {
    const { logger, lines, records } = capture();
    logger.info(
      {
        req: {
          method: 'GET',
          headers: { authorization: SECRETS.bearer, 'x-vault-token': SECRETS.vaultHeader },
        },
        headers: { authorization: SECRETS.bearer, cookie: SECRETS.cookie },
        token: SECRETS.token,
        backend: { user: 'prism', password: SECRETS.password },
        oidc: { clientSecret: SECRETS.secret, tokens: { refresh_token: SECRETS.refresh } },
        secret: SECRETS.secret,
      },
      'request',
    );
    const text = lines.join('');
    for (const value of Object.values(SECRETS)) expect(text).not.toContain(value);
    const [record] = records();
    expect(record).toMatchObject({
      name: 'prism-test',
      msg: 'request',
      req: { method: 'GET', headers: { authorization: '[Redacted]', 'x-vault-token': '[Redacted]' } },
      headers: { authorization: '[Redacted]', cookie: '[Redacted]' },
      token: '[Redacted]',
      backend: { user: 'prism', password: '[Redacted]' },
      oidc: { clientSecret: '[Redacted]', tokens: { refresh_token: '[Redacted]' } },
      secret: '[Redacted]',
    });
  });

  it('keeps fields that are not credentials as they were', () => {
    const { logger, records } = capture();
    logger.info({ namespace: 'orders', tokenSource: 'file', passwordless: true }, 'ok');
    expect(records()[0]).toMatchObject({ namespace: 'orders', tokenSource: 'file', passwordless: true });
  });

  it('logs at the given level, dropping lines below it', () => {
    const { logger, records } = capture('warn');
    logger.info('dropped');
    logger.warn('kept');
    expect(records().map((r) => r.msg)).toEqual(['kept']);
  });

  it('takes the level from PRISM_LOG_LEVEL when none is given, and info when neither is', () => {
    process.env[LOG_LEVEL_ENV] = 'debug';
    expect(logLevel()).toBe('debug');
    expect(logLevel('error')).toBe('error');
    delete process.env[LOG_LEVEL_ENV];
    expect(logLevel()).toBe('info');
    const { logger, records } = capture();
    logger.debug('dropped');
    expect(records()).toEqual([]);
  });

  it('refuses an unknown level, naming where it came from', () => {
    process.env[LOG_LEVEL_ENV] = 'verbose';
    expect(() => logLevel()).toThrow("PRISM_LOG_LEVEL 'verbose' is not one of debug, info, warn, error");
    expect(() => logLevel('loud')).toThrow("the log level 'loud' is not one of debug, info, warn, error");
  });
});
