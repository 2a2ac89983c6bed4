import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { PrismError, UsageError } from '../errors.js';
import { PACKAGE_ROOT } from '../package-root.js';
import { BACKEND_NAMES, PATTERN_TYPES, PATTERNS } from './registry.js';
import { didYouMean } from './suggest.js';
import { validateSources, type ValidationReport } from './validate.js';

export interface InitRequest {
  namespace: string;
  team: string;
  description?: string;
  patternTypes: readonly string[];
  /** "<pattern name or type>.<slot>" → backend. */
  backends: Readonly<Record<string, string>>;
}

export interface InitResult {
  yaml: string;
  report: ValidationReport;
}

/** Parses repeated `--backend <pattern>.<slot>=<backend>` flags. */
export function parseBackendFlags(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    const match = /^([a-z0-9-]+)\.([a-z0-9-]+)=([a-z0-9-]+)$/.exec(value);
    if (!match)
      throw new UsageError(
        `--backend '${value}' is not <pattern>.<slot>=<backend>`,
        'for example --backend cache.store=postgres',
      );
    out[`${match[1]}.${match[2]}`] = match[3] as string;
  }
  return out;
}

/** Builds a namespace file from templates/namespace and validates it; nothing is written here. */
export async function renderNamespaceInit(request: InitRequest): Promise<InitResult> {
  if (request.patternTypes.length === 0)
    throw new UsageError('no pattern given', `pass --pattern with one of: ${PATTERN_TYPES.join(', ')}`);
  const patterns: Array<Record<string, unknown>> = [];
  const used = new Set<string>();
  const applied = new Set<string>();
  for (const type of request.patternTypes) {
    if (!PATTERNS[type])
      throw new UsageError(`unknown pattern type '${type}'`, didYouMean(type, PATTERN_TYPES));
    const pattern = await loadTemplate(type, request.namespace);
    const base = String(pattern.name);
    let name = base;
    for (let n = 2; used.has(name); n++) name = `${base}-${n}`;
    used.add(name);
    pattern.name = name;
    const slots = pattern.slots as Record<string, { backend?: string }>;
    for (const [key, backend] of Object.entries(request.backends)) {
      const [target, slot] = key.split('.') as [string, string];
      if (target !== name && target !== type) continue;
      if (!BACKEND_NAMES.includes(backend))
        throw new UsageError(
          `unknown backend '${backend}' in --backend ${key}=${backend}`,
          didYouMean(backend, BACKEND_NAMES),
        );
      slots[slot] = { ...slots[slot], backend };
      applied.add(key);
    }
    patterns.push(pattern);
  }
  const unused = Object.keys(request.backends).filter((k) => !applied.has(k));
  if (unused.length > 0)
    throw new UsageError(
      `--backend ${unused.join(', ')} names no pattern in this namespace`,
      `patterns: ${[...used].join(', ')}`,
    );

  const document = {
    namespace: request.namespace,
    team: request.team,
    description: request.description ?? `${request.namespace} namespace`,
    patterns,
  };
  const yaml = `# Check with: prismctl namespace validate ${request.namespace}.yaml\n${stringify(document, { lineWidth: 0 })}`;
  const { report } = validateSources([{ file: `${request.namespace}.yaml`, text: yaml }]);
  return { yaml, report };
}

async function loadTemplate(type: string, namespace: string): Promise<Record<string, unknown>> {
  const file = join(PACKAGE_ROOT, 'templates', 'namespace', 'patterns', `${type}.yaml`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new PrismError('E_TEMPLATE', `template for ${type} is missing: ${file}`, {
      hint: 'reinstall prismctl',
      cause: err,
    });
  }
  return parse(text.replaceAll('{{namespace}}', namespace)) as Record<string, unknown>;
}
