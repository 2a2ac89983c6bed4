/**
 * Pattern types from pattern modules (docs/sdk.md): `--pattern-module <path or package>` on
 * `namespace validate`, `proxy serve` and `runner serve` loads a module whose default export is a
 * PatternDefinition, and adds its type to the registry before anything reads it. Without the
 * module, the type is unknown and validation refuses it (E_PATTERN_TYPE), as for any typo.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PrismError } from '../errors.js';
import type { PatternDefinition } from '../sdk/definition.js';
import { SDK_MAJOR } from '../sdk/version.js';
import { PATTERNS, PATTERN_TYPES, type PatternSpec } from './registry.js';
import { ISOLATABLE_TYPES, LAUNCHED_ONLY_TYPES } from './isolation.js';

interface Registered {
  definition: PatternDefinition;
  /** What the launcher hands to `runner serve --pattern-module`: an absolute path or file URL. */
  module: string;
}

const registered = new Map<string, Registered>();
const TYPE = /^(?!.*--)[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
const APIS = new Set(['keyvalue', 'producer', 'consumer']);

/** The definition of a pattern module's type; undefined for built-in and unknown types. */
export function externalPattern(type: string): PatternDefinition | undefined {
  return registered.get(type)?.definition;
}

/** The modules loaded in this process, as `runner serve --pattern-module` takes them. */
export function patternModules(): string[] {
  return [...new Set([...registered.values()].map((r) => r.module))];
}

/** The data API a runner of `type` serves: the module's `api`, or the type itself. */
export function servedApi(type: string): string {
  return registered.get(type)?.definition.api ?? type;
}

/** Adds a definition's type to the registry; refuses a bad shape, a built-in type, another SDK major. */
export function registerPattern(definition: PatternDefinition, module: string): void {
  const where = `pattern module ${module}`;
  const bad = (message: string, hint?: string) =>
    new PrismError('E_PATTERN_MODULE', `${where}: ${message}`, hint ? { hint } : {});
  if (typeof definition !== 'object' || definition === null || typeof definition.createRunner !== 'function')
    throw bad(
      'its default export is not a pattern definition',
      "export default definePattern({ ... }) from 'prismctl/sdk'",
    );
  if (definition.sdkVersion !== SDK_MAJOR)
    throw bad(
      `it was built for SDK ${String(definition.sdkVersion)}; this prismctl has SDK ${SDK_MAJOR}`,
      'rebuild the module against this prismctl',
    );
  if (typeof definition.type !== 'string' || !TYPE.test(definition.type))
    throw bad(`type ${JSON.stringify(definition.type)} is not a valid pattern type name`);
  const existing = registered.get(definition.type);
  if (existing?.definition === definition) return;
  if (PATTERNS[definition.type])
    throw bad(`type '${definition.type}' is already registered`, 'give the pattern another type name');
  if (!APIS.has(definition.api))
    throw bad(`api ${JSON.stringify(definition.api)} is not keyvalue, producer or consumer`);
  if (Object.keys(definition.slots ?? {}).length === 0) throw bad('it declares no slot');
  for (const [name, setting] of Object.entries(definition.settings ?? {})) {
    if (setting.pattern !== undefined) {
      try {
        new RegExp(setting.pattern);
      } catch (err) {
        throw bad(`setting ${name}: pattern is not a regular expression: ${(err as Error).message}`);
      }
    }
  }
  const spec: PatternSpec = {
    type: definition.type,
    description: definition.description,
    versions: definition.versions?.length ? definition.versions : ['v1'],
    slots: definition.slots,
    settings: Object.keys(definition.settings ?? {}).length ? ['custom'] : [],
    requiredSettings: [],
    defaults: {},
    // Launched runners take no Vault sessions (E_ISOLATION_VAULT), and a module's runner is launched.
    sessionAware: false,
  };
  // The registry is data read after start-up; a module adds its row before anything reads it.
  (PATTERNS as Record<string, PatternSpec>)[definition.type] = spec;
  PATTERN_TYPES.push(definition.type);
  (ISOLATABLE_TYPES as Set<string>).add(definition.type);
  (LAUNCHED_ONLY_TYPES as Set<string>).add(definition.type);
  registered.set(definition.type, { definition, module });
}

/** Where `spec` (a path, or else a package name resolved from the working directory) points. */
export function resolvePatternModule(spec: string, cwd = process.cwd()): string {
  if (spec.startsWith('file:')) return spec;
  if (spec.startsWith('.') || isAbsolute(spec) || existsSync(resolve(cwd, spec)))
    return pathToFileURL(resolve(cwd, spec)).href;
  try {
    return pathToFileURL(createRequire(join(cwd, 'noop.js')).resolve(spec)).href;
  } catch (err) {
    throw new PrismError('E_PATTERN_MODULE', `pattern module ${spec} cannot be found from ${cwd}`, {
      hint: 'give a path (./dist/index.js) or install the package where prismctl runs',
      cause: err,
    });
  }
}

/** Loads each module and registers its default export (or its `pattern` export). */
export async function loadPatternModules(specs: readonly string[] = []): Promise<PatternDefinition[]> {
  const out: PatternDefinition[] = [];
  for (const spec of specs) {
    const url = resolvePatternModule(spec);
    let loaded: { default?: unknown; pattern?: unknown };
    try {
      loaded = (await import(url)) as typeof loaded;
    } catch (err) {
      throw new PrismError(
        'E_PATTERN_MODULE',
        `pattern module ${spec} failed to load: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const definition = (loaded.default ?? loaded.pattern) as PatternDefinition;
    registerPattern(definition, url);
    out.push(definition);
  }
  return out;
}

/** `settings.custom` of a module's pattern: every name declared, every value matching, required ones given. */
export function customSettingProblems(
  type: string,
  custom: Readonly<Record<string, string>>,
): Array<{ key?: string; message: string; hint: string }> {
  const definition = externalPattern(type);
  if (!definition) return [];
  const declared = definition.settings ?? {};
  const names = Object.keys(declared);
  const problems: Array<{ key?: string; message: string; hint: string }> = [];
  for (const [key, value] of Object.entries(custom)) {
    const setting = declared[key];
    if (!setting) {
      problems.push({
        key,
        message: `${type} has no setting '${key}'`,
        hint: names.length ? `settings of ${type}: ${names.join(', ')}` : `${type} has no settings`,
      });
    } else if (setting.pattern !== undefined && !new RegExp(`^(?:${setting.pattern})$`).test(value)) {
      problems.push({
        key,
        message: `setting '${key}' of ${type} is ${JSON.stringify(value)}, which does not match ${setting.pattern}`,
        hint: setting.description,
      });
    }
  }
  for (const [name, setting] of Object.entries(declared)) {
    if (setting.required && !(name in custom))
      problems.push({
        message: `${type} requires setting '${name}'`,
        hint: `add \`settings: { custom: { ${name}: ... } }\` (${setting.description})`,
      });
  }
  return problems;
}

/** A module pattern's settings with the declared defaults filled in. */
export function customSettings(
  type: string,
  custom: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, setting] of Object.entries(externalPattern(type)?.settings ?? {}))
    if (setting.default !== undefined) out[name] = setting.default;
  return { ...out, ...custom };
}
