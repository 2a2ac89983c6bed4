import { format, inspect } from 'node:util';
import { parse as oclifParse } from '@oclif/core/parser';
import { boolean } from '@oclif/core/flags';

/** What the fast path knows of the CLI: what commands read from `this.config`. */
export interface LiteConfig {
  root: string;
  version: string;
  name: string;
  bin: string;
}

type FlagMap = Record<string, { type: string }>;
interface CommandStatics {
  id?: string;
  flags?: FlagMap;
  baseFlags?: FlagMap;
  args?: Record<string, unknown>;
  strict?: boolean;
  enableJsonFlag?: boolean;
}

/**
 * oclif's Command as prismctl's commands use it (parse, log, logToStderr, jsonEnabled, exit,
 * catch, the JSON result), for the fast-start bundle, where `@oclif/core` resolves to
 * src/cli/lite/oclif-core.ts. Parsing is oclif's own parser (bundled with its error paths handed
 * back to oclif), so a command line means the same thing on both paths. Mirrors
 * @oclif/core/lib/command.js, whose behaviour the tests of test/unit/cli/fast-start.test.ts compare.
 */
export abstract class Command {
  static id?: string;
  static flags?: FlagMap;
  static baseFlags?: FlagMap;
  static args?: Record<string, unknown>;
  static strict = true;
  static enableJsonFlag = false;

  id: string | undefined;
  parsed = false;

  constructor(
    public argv: string[],
    public config: LiteConfig,
  ) {
    this.id = this.ctor.id;
  }

  abstract run(): Promise<unknown>;

  protected get ctor(): CommandStatics {
    return this.constructor as CommandStatics;
  }

  /** oclif's Command._run: run, catch, and print the result as JSON under --json. */
  async _run(): Promise<unknown> {
    let result: unknown;
    try {
      delete process.env[`${this.config.bin.toUpperCase()}_REDIRECTED`];
      result = await this.run();
    } catch (error) {
      if (needsOclif(error)) throw error;
      await this.catch(error as Error);
    }
    if (result && this.jsonEnabled()) this.logJson(result);
    return result;
  }

  /** Every prismctl command overrides this (src/cli/base-command.ts); as oclif's without --json. */
  protected catch(err: Error & { exitCode?: number }): Promise<unknown> {
    process.exitCode = process.exitCode ?? err.exitCode ?? 1;
    return Promise.reject(err);
  }

  async parse(options: CommandStatics = this.ctor, argv: string[] = this.argv): Promise<never> {
    const combined = { ...options.baseFlags, ...options.flags };
    const flags = options.enableJsonFlag ? { json: JSON_FLAG, ...combined } : combined;
    this.argv = [...argv];
    const results = (await oclifParse(argv, { context: this, ...options, flags } as never)) as never;
    this.parsed = true;
    return results;
  }

  jsonEnabled(): boolean {
    if (!this.ctor.enableJsonFlag) return false;
    if (process.env[`${this.config.bin.toUpperCase()}_CONTENT_TYPE`]?.toLowerCase() === 'json') return true;
    const passThrough = this.argv.indexOf('--');
    const json = this.argv.indexOf('--json');
    return passThrough === -1 ? json !== -1 : json !== -1 && json < passThrough;
  }

  log(message: unknown = '', ...args: unknown[]): void {
    if (!this.jsonEnabled())
      console.log(format(typeof message === 'string' ? message : inspect(message), ...args));
  }

  logToStderr(message: unknown = '', ...args: unknown[]): void {
    if (!this.jsonEnabled())
      console.error(format(typeof message === 'string' ? message : inspect(message), ...args));
  }

  logJson(json: unknown): void {
    console.log(JSON.stringify(json, undefined, 2));
  }

  exit(code = 0): never {
    throw Object.assign(new Error(`EEXIT: ${code}`), { code: 'EEXIT', oclif: { exit: code } });
  }
}

const NEEDS_OCLIF = Symbol.for('prismctl.needs-oclif');
const JSON_FLAG = boolean({ description: 'Format output as json.', helpGroup: 'GLOBAL' });

/** Thrown where oclif's parser would report a usage error: the line goes to oclif instead. */
export function needsOclif(error: unknown): boolean {
  return typeof error === 'object' && error !== null && NEEDS_OCLIF in error;
}
