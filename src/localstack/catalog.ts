/**
 * The Docker stack's component catalog: templates/dev/components.yaml (the defaults, as data),
 * then $PRISM_HOME/dev.yaml (or --config), then flags. Every problem in a file names the file,
 * line and column; a problem in a flag names the flag.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile } from '../config/config-file.js';
import { PrismError } from '../errors.js';
import { didYouMean } from '../config/suggest.js';
import {
  COMPONENTS_FORMAT,
  devConfigFormat,
  STACK_NAME,
  type CatalogComponent,
  type DevConfigFile,
  type ProbeType,
} from './catalog-schema.js';

export { PROBE_TYPES, type ProbeType } from './catalog-schema.js';

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
    const changes = loadConfigFile(file, devConfigFormat(Object.fromEntries(components)));
    sources.push(file);
    const o = applyChanges(changes, components);
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

function isLoopbackUrl(text: string): boolean {
  const host = new URL(text).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

function stringMap(env: Record<string, string | number | boolean>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

function readCatalog(file: string): Map<string, ComponentSpec> {
  const { components } = loadConfigFile(file, COMPONENTS_FORMAT);
  return new Map(Object.entries(components).map(([name, raw]) => [name, componentSpec(name, raw)]));
}

function componentSpec(name: string, raw: CatalogComponent): ComponentSpec {
  return {
    name,
    image: raw.image,
    ...(raw.command !== undefined ? { command: raw.command } : {}),
    env: stringMap(raw.env ?? {}),
    ports: { ...raw.ports },
    containerPorts: { ...raw.ports },
    ...(raw.volume !== undefined ? { volume: raw.volume } : {}),
    probe: {
      type: raw.probe.type,
      port: raw.probe.port,
      ...(raw.probe.path !== undefined ? { path: raw.probe.path } : {}),
    },
    dependsOn: raw.dependsOn ?? [],
    files: raw.files ?? {},
    ...(raw.user !== undefined ? { user: raw.user } : {}),
  };
}

interface FileOverrides {
  stack?: string;
  network?: NetworkMode;
  only?: string[];
  issuer?: string;
}

/** Applies a dev.yaml the loader has checked against this catalog. */
function applyChanges(file: DevConfigFile, components: Map<string, ComponentSpec>): FileOverrides {
  const out: FileOverrides = {};
  if (file.stack !== undefined) out.stack = file.stack;
  if (file.network !== undefined) out.network = file.network;
  if (file.only !== undefined) out.only = file.only;
  if (file.issuer !== undefined) out.issuer = file.issuer;
  const disabled = new Set<string>();
  for (const [name, change] of Object.entries(file.components ?? {})) {
    const c = components.get(name)!;
    if (change.image !== undefined) c.image = change.image;
    if (change.command !== undefined) c.command = change.command;
    if (change.env !== undefined) c.env = { ...c.env, ...stringMap(change.env) };
    if (change.user !== undefined) c.user = change.user;
    if (change.volume !== undefined) c.volume = change.volume;
    if (change.ports !== undefined) Object.assign(c.ports, change.ports);
    if (change.enabled === false) disabled.add(name);
  }
  if (disabled.size > 0) out.only = (out.only ?? [...components.keys()]).filter((n) => !disabled.has(n));
  return out;
}
