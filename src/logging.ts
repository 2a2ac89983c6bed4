/**
 * The one place a pino logger is made. Every logger redacts credentials by key wherever a log
 * object carries them (an authorization header, a token, a password, a secret), so a careless
 * `logger.info({ req })` cannot write one to a log file; its level comes from the caller (the
 * `--log-level` flag) or `PRISM_LOG_LEVEL`, default `info`.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { PrismError } from './errors.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_LEVEL_ENV = 'PRISM_LOG_LEVEL';

/** Keys whose values are credentials, at the top of a log object or one or two levels down. */
const SECRET_KEYS = [
  'authorization',
  'cookie',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'id_token',
  'clientSecret',
  'client_secret',
  'adminToken',
  'password',
  'secret',
  'apiKey',
  'x-vault-token',
  'set-cookie',
];

/** fast-redact paths (pino's `redact`): `token`, `*.token` and `*.*.token` for every key above. */
export const REDACT_PATHS: readonly string[] = SECRET_KEYS.flatMap((key) => {
  const step = /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `["${key}"]`;
  return [step.startsWith('.') ? key : step, `*${step}`, `*.*${step}`];
});

export interface LoggerOptions {
  /** The `--log-level` flag's value; when absent, PRISM_LOG_LEVEL, then `info`. */
  level?: string;
  /** Where lines go; stdout by default (`pino.destination(2)` for stderr). */
  destination?: DestinationStream;
}

export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = logLevel(options.level);
  const settings = { name, level, redact: { paths: [...REDACT_PATHS], censor: '[Redacted]' } };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

/** The level to log at: the given one, else PRISM_LOG_LEVEL, else `info`; anything else is refused. */
export function logLevel(given?: string): LogLevel {
  const fromEnv = process.env[LOG_LEVEL_ENV];
  const value = given ?? (fromEnv === undefined || fromEnv === '' ? 'info' : fromEnv);
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  const source = given !== undefined ? 'the log level' : LOG_LEVEL_ENV;
  throw new PrismError('E_USAGE', `${source} '${value}' is not one of ${LOG_LEVELS.join(', ')}`);
}
