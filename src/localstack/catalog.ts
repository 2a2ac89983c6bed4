/**
 * The Docker stack's component catalog: templates/dev/components.yaml (the defaults, as data),
 * then $PRISM_HOME/dev.yaml (or --config), then flags. Every problem in a file names the file,
 * line and column; a problem in a flag names the flag.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { PrismError } from '../errors.js';
import { didYouMean } from '../config/suggest.js';

export const PROBE_TYPES = ['redis', 'postgres', 'nats', 'kafka', 'http'] as const;
export type ProbeType = (typeof PROBE_TYPES)[number];

export interface ProbeSpec {
  type: ProbeType;
  /** Which of the component's ports the probe talks to. */
  port: string;
  /** For http probes. */
  path?: string;
}

export interface ComponentSpec {
  name: string;
  image: string;
  /** Replaces the image's command; undefined keeps the image's own. */
  command?: string[];
  env: Record<string, string>;
  /** Port name → host port (with host networking, also the container's). */
  ports: Record<string, number>;
  /** Port name → the port inside the container on a bridge network (the catalog's default). */
  containerPorts: Record<string, number>;
  /** Where the component keeps data; a named volume is mounted there. */
  volume?: string;
  probe: ProbeSpec;
  dependsOn: string[];
  /** Path in the container → name of a file prismctl renders (e.g. dex-config). */
  files: Record<string, string>;
  user?: string;
}

export type NetworkMode = 'bridge' | 'host';

export interface StackConfig {
  stack: string;
  network: NetworkMode;
  /** The selected components, in dependency order. */
  components: ComponentSpec[];
  /**
   * dev.yaml `issuer:`: an OpenID issuer of your own that the stack's Vault and proxy trust
   * instead of Dex, which then does not run.
   */
  issuer?: string;
  /** Every component's ports as templates/dev/components.yaml states them, before any change. */
  catalogPorts: Record<string, Record<string, number>>;
  /** Files the configuration came from, for messages. */
  sources: string[];
}

export interface CatalogOverrides {
  stack?: string;
  network?: NetworkMode;
  /** --components: the component set. */
  only?: string[];
  /** --image name=ref */
  images?: string[];
  /** --port name=N or name.port=N */
  ports?: string[];
}

const STACK_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/;
const COMPONENT_KEYS = ['image', 'command', 'env', 'ports', 'volume', 'probe', 'dependsOn', 'files', 'user'];
const OVERRIDE_COMPONENT_KEYS = ['image', 'command', 'env', 'ports', 'user', 'volume', 'enabled'];
const TOP_KEYS = ['stack', 'network', 'only', 'issuer', 'components'];

export function catalogFile(packageRoot: string): string {
  return join(packageRoot, 'templates/dev/components.yaml');
}

/** The catalog with dev.yaml and flags applied, validated, in dependency order. */
export function loadStackConfig(options: {
  packageRoot: string;
  /** dev.yaml; missing is fine unless `required`. */
  configFile?: string;
  configRequired?: boolean;
  overrides?: CatalogOverrides;
}): StackConfig {
  const base = catalogFile(options.packageRoot);
  const components = readCatalog(base);
  const catalogPorts = Object.fromEntries([...components].map(([name, c]) => [name, { ...c.ports }]));
  let stack = 'dev';
  let network: NetworkMode = 'bridge';
  let only: string[] | undefined;
  let issuer: string | undefined;
  const sources = [base];

  const file = options.configFile;
  if (file && (existsSync(file) || options.configRequired)) {
    const parsed = readYaml(file);
    sources.push(file);
    const o = applyOverrideFile(parsed, components);
    stack = o.stack ?? stack;
    network = o.network ?? network;
    only = o.only ?? only;
    issuer = o.issuer;
  }

  const flags = options.overrides ?? {};
  if (flags.stack !== undefined) stack = flags.stack;
  if (flags.network !== undefined) network = flags.network;
  if (flags.only !== undefined) only = flags.only;
  if (!STACK_NAME.test(stack)) {
    throw new PrismError('E_USAGE', `stack name '${stack}' must be 1-31 lowercase letters, digits or dashes`);
  }
  for (const pair of flags.images ?? []) {
    const [name, ref] = splitPair(pair, '--image');
    componentNamed(components, name, '--image').image = ref;
  }
  for (const pair of flags.ports ?? []) {
    const [key, value] = splitPair(pair, '--port');
    const [name, portName] = key.split('.', 2) as [string, string | undefined];
    const component = componentNamed(components, name, '--port');
    const names = Object.keys(component.ports);
    const target = portName ?? (names.length === 1 ? names[0]! : undefined);
    if (target === undefined || !(target in component.ports)) {
      throw new PrismError(
        'E_USAGE',
        `--port ${pair}: ${component.name} has ports ${names.join(', ')}; write --port ${component.name}.<port>=<number>`,
      );
    }
    component.ports[target] = portNumber(value, `--port ${pair}`);
  }

  const where = only !== undefined && only === flags.only ? '--components' : 'only';
  // An issuer of your own replaces Dex: Dex is not started unless named, which is a contradiction.
  const selected = only ?? [...components.keys()].filter((name) => !(issuer && name === 'dex'));
  for (const name of selected) componentNamed(components, name, where);
  if (issuer && selected.includes('dex')) {
    throw new PrismError('E_USAGE', `${where} names dex, but issuer: ${issuer} replaces Dex`, {
      hint: `remove dex from ${where}, or remove issuer: from ${file}`,
    });
  }
  if (issuer && network === 'bridge' && selected.includes('vault') && isLoopbackUrl(issuer)) {
    throw new PrismError(
      'E_USAGE',
      `issuer: ${issuer} is on this machine's loopback, which the Vault container cannot reach on the bridge network`,
      { hint: 'use network: host (Linux), or an issuer the containers can reach' },
    );
  }
  return {
    stack,
    network,
    components: dependencyOrder(selected, components),
    ...(issuer !== undefined ? { issuer } : {}),
    catalogPorts,
    sources,
  };
}

function splitPair(pair: string, flag: string): [string, string] {
  const eq = pair.indexOf('=');
  if (eq <= 0 || eq === pair.length - 1) {
    throw new PrismError('E_USAGE', `${flag} ${pair}: expected <component>=<value>`);
  }
  return [pair.slice(0, eq), pair.slice(eq + 1)];
}

function componentNamed(components: Map<string, ComponentSpec>, name: string, where: string): ComponentSpec {
  const c = components.get(name);
  if (!c) {
    throw new PrismError(
      'E_USAGE',
      `${where}: unknown component '${name}'; ${didYouMean(name, [...components.keys()])}`,
    );
  }
  return c;
}

function portNumber(value: unknown, where: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new PrismError('E_USAGE', `${where}: a port must be an integer from 1 to 65535`);
  }
  return n;
}

/**
 * Orders the selected components so each comes after what it depends on. A dependency outside
 * the selection is dropped (Vault without Dex still starts; its bootstrap says what it skipped).
 */
export function dependencyOrder(
  selected: readonly string[],
  all: Map<string, ComponentSpec>,
): ComponentSpec[] {
  const chosen = new Set(selected);
  const ordered: ComponentSpec[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      throw new PrismError(
        'E_USAGE',
        `components depend on each other in a cycle: ${[...path, name].join(' → ')}`,
      );
    }
    state.set(name, 'visiting');
    const c = all.get(name)!;
    for (const dep of c.dependsOn) if (chosen.has(dep)) visit(dep, [...path, name]);
    state.set(name, 'done');
    ordered.push({ ...c, dependsOn: c.dependsOn.filter((d) => chosen.has(d)) });
  };
  for (const name of all.keys()) if (chosen.has(name)) visit(name, []);
  return ordered;
}

/** Start waves: every component of a wave depends only on earlier waves. */
export function startWaves(components: readonly ComponentSpec[]): ComponentSpec[][] {
  const wave = new Map<string, number>();
  const waves: ComponentSpec[][] = [];
  for (const c of components) {
    const w = Math.max(-1, ...c.dependsOn.map((d) => wave.get(d) ?? -1)) + 1;
    wave.set(c.name, w);
    (waves[w] ??= []).push(c);
  }
  return waves;
}

interface ParsedYaml {
  file: string;
  doc: Document;
  lines: LineCounter;
}

function readYaml(file: string): ParsedYaml {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PrismError('E_INPUT_UNREADABLE', `cannot read ${file}: ${(err as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const first = doc.errors[0];
  if (first) {
    const pos = lines.linePos(first.pos[0]);
    throw new PrismError('E_USAGE', `${file}:${pos.line}:${pos.col}: ${first.message.split('\n')[0]}`);
  }
  return { file, doc, lines };
}

/**
 * `file:line:col: field: what` for the node at `path`; with `atKey`, at the key itself (for an
 * unknown or misspelled key, the key is what is wrong).
 */
function fieldError(y: ParsedYaml, path: Array<string | number>, what: string, atKey = false): PrismError {
  let offset: number | undefined;
  if (atKey && path.length > 0) {
    const parent = y.doc.getIn(path.slice(0, -1), true);
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1]);
      offset = (pair?.key as { range?: [number, number, number] } | undefined)?.range?.[0];
    }
  }
  const node = y.doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
  offset ??= node?.range?.[0] ?? 0;
  const pos = y.lines.linePos(offset);
  const field = path.join('.');
  return new PrismError('E_USAGE', `${y.file}:${pos.line}:${pos.col}: ${field ? `${field}: ` : ''}${what}`, {
    hint: 'nothing was started',
  });
}

function isLoopbackUrl(text: string): boolean {
  const host = new URL(text).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

function urlProtocol(text: string): string | undefined {
  try {
    return new URL(text).protocol;
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function stringMap(y: ParsedYaml, path: Array<string | number>, v: unknown): Record<string, string> {
  if (!isRecord(v)) throw fieldError(y, path, 'must be a mapping of NAME: value');
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean') {
      throw fieldError(y, [...path, k], 'must be a string, number or boolean');
    }
    out[k] = String(val);
  }
  return out;
}

function unknownKeys(
  y: ParsedYaml,
  path: Array<string | number>,
  v: Record<string, unknown>,
  allowed: string[],
) {
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key))
      throw fieldError(y, [...path, key], `unknown field; ${didYouMean(key, allowed)}`, true);
  }
}

function readCatalog(file: string): Map<string, ComponentSpec> {
  const y = readYaml(file);
  const root = y.doc.toJS() as unknown;
  if (!isRecord(root) || !isRecord(root.components)) throw fieldError(y, [], 'needs a `components:` mapping');
  const components = new Map<string, ComponentSpec>();
  for (const [name, raw] of Object.entries(root.components)) {
    const at = ['components', name];
    if (!isRecord(raw)) throw fieldError(y, at, 'must be a mapping');
    unknownKeys(y, at, raw, COMPONENT_KEYS);
    if (typeof raw.image !== 'string')
      throw fieldError(y, [...at, 'image'], 'is required (an image reference)');
    if (raw.command !== undefined && !isStringList(raw.command)) {
      throw fieldError(y, [...at, 'command'], 'must be a list of strings');
    }
    if (!isRecord(raw.ports)) throw fieldError(y, [...at, 'ports'], 'must map port names to numbers');
    const ports: Record<string, number> = {};
    for (const [p, n] of Object.entries(raw.ports)) {
      try {
        ports[p] = portNumber(n, p);
      } catch {
        throw fieldError(y, [...at, 'ports', p], 'must be an integer from 1 to 65535');
      }
    }
    const probe = raw.probe;
    if (
      !isRecord(probe) ||
      !PROBE_TYPES.includes(probe.type as ProbeType) ||
      typeof probe.port !== 'string'
    ) {
      throw fieldError(y, [...at, 'probe'], `needs type (${PROBE_TYPES.join(', ')}) and port`);
    }
    if (!(probe.port in ports)) throw fieldError(y, [...at, 'probe', 'port'], `names no port of ${name}`);
    components.set(name, {
      name,
      image: raw.image,
      ...(raw.command !== undefined ? { command: raw.command } : {}),
      env: raw.env === undefined ? {} : stringMap(y, [...at, 'env'], raw.env),
      ports,
      containerPorts: { ...ports },
      ...(typeof raw.volume === 'string' ? { volume: raw.volume } : {}),
      probe: {
        type: probe.type as ProbeType,
        port: probe.port,
        ...(typeof probe.path === 'string' ? { path: probe.path } : {}),
      },
      dependsOn: isStringList(raw.dependsOn) ? raw.dependsOn : [],
      files: raw.files === undefined ? {} : stringMap(y, [...at, 'files'], raw.files),
      ...(typeof raw.user === 'string' ? { user: raw.user } : {}),
    });
  }
  for (const c of components.values()) {
    for (const dep of c.dependsOn) {
      if (!components.has(dep))
        throw fieldError(y, ['components', c.name, 'dependsOn'], `unknown component '${dep}'`);
    }
  }
  return components;
}

interface FileOverrides {
  stack?: string;
  network?: NetworkMode;
  only?: string[];
  issuer?: string;
}

function applyOverrideFile(y: ParsedYaml, components: Map<string, ComponentSpec>): FileOverrides {
  const root = (y.doc.toJS() as unknown) ?? {};
  if (!isRecord(root)) throw fieldError(y, [], 'must be a mapping');
  unknownKeys(y, [], root, TOP_KEYS);
  const out: FileOverrides = {};
  if (root.stack !== undefined) {
    if (typeof root.stack !== 'string' || !STACK_NAME.test(root.stack)) {
      throw fieldError(y, ['stack'], 'must be 1-31 lowercase letters, digits or dashes');
    }
    out.stack = root.stack;
  }
  if (root.network !== undefined) {
    if (root.network !== 'bridge' && root.network !== 'host')
      throw fieldError(y, ['network'], 'must be bridge or host');
    out.network = root.network;
  }
  if (root.only !== undefined) {
    if (!isStringList(root.only)) throw fieldError(y, ['only'], 'must be a list of component names');
    root.only.forEach((name, i) => {
      if (!components.has(name)) {
        throw fieldError(
          y,
          ['only', i],
          `unknown component '${name}'; ${didYouMean(name, [...components.keys()])}`,
        );
      }
    });
    out.only = root.only;
  }
  if (root.issuer !== undefined) {
    const issuer = root.issuer;
    const protocol = typeof issuer === 'string' ? urlProtocol(issuer) : undefined;
    if (typeof issuer !== 'string' || (protocol !== 'http:' && protocol !== 'https:')) {
      throw fieldError(y, ['issuer'], 'must be the http(s) URL of an OpenID issuer');
    }
    out.issuer = issuer;
  }
  if (root.components === undefined) return out;
  if (!isRecord(root.components))
    throw fieldError(y, ['components'], 'must be a mapping of component name to changes');
  const disabled = new Set<string>();
  for (const [name, raw] of Object.entries(root.components)) {
    const at = ['components', name];
    const c = components.get(name);
    if (!c) throw fieldError(y, at, `unknown component; ${didYouMean(name, [...components.keys()])}`, true);
    if (!isRecord(raw)) throw fieldError(y, at, 'must be a mapping');
    unknownKeys(y, at, raw, OVERRIDE_COMPONENT_KEYS);
    if (raw.image !== undefined) {
      if (typeof raw.image !== 'string' || raw.image === '')
        throw fieldError(y, [...at, 'image'], 'must be an image reference');
      c.image = raw.image;
    }
    if (raw.command !== undefined) {
      if (!isStringList(raw.command)) throw fieldError(y, [...at, 'command'], 'must be a list of strings');
      c.command = raw.command;
    }
    if (raw.env !== undefined) c.env = { ...c.env, ...stringMap(y, [...at, 'env'], raw.env) };
    if (raw.user !== undefined) {
      if (typeof raw.user !== 'string') throw fieldError(y, [...at, 'user'], 'must be a string');
      c.user = raw.user;
    }
    if (raw.volume !== undefined) {
      if (typeof raw.volume !== 'string' || !raw.volume.startsWith('/')) {
        throw fieldError(y, [...at, 'volume'], 'must be an absolute path in the container');
      }
      c.volume = raw.volume;
    }
    if (raw.ports !== undefined) {
      if (!isRecord(raw.ports)) throw fieldError(y, [...at, 'ports'], 'must map port names to numbers');
      for (const [p, n] of Object.entries(raw.ports)) {
        if (!(p in c.ports)) {
          throw fieldError(
            y,
            [...at, 'ports', p],
            `${name} has no port '${p}'; ${didYouMean(p, Object.keys(c.ports))}`,
            true,
          );
        }
        try {
          c.ports[p] = portNumber(n, p);
        } catch {
          throw fieldError(y, [...at, 'ports', p], 'must be an integer from 1 to 65535');
        }
      }
    }
    if (raw.enabled !== undefined) {
      if (typeof raw.enabled !== 'boolean') throw fieldError(y, [...at, 'enabled'], 'must be true or false');
      if (!raw.enabled) disabled.add(name);
    }
  }
  if (disabled.size > 0) out.only = (out.only ?? [...components.keys()]).filter((n) => !disabled.has(n));
  return out;
}
