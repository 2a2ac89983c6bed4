/**
 * Binds each slot of a pattern assignment to a driver (DESIGN.md §4, §6). Before anything
 * connects, every driver's declared capabilities are checked against what the registry says the
 * slot needs, so a runner whose keyvalue store was bound to NATS refuses at start with
 * E_CAPABILITY_MISSING instead of failing on its first request. `start()` connects the slots in
 * assignment order; `stop()` closes them in reverse order, every one even when one fails.
 */
import { BACKENDS, PATTERNS, describeNeeds, type Capability, type SlotSpec } from '../config/registry.js';
import type { AnyDriver, DriverOptions } from '../drivers/interfaces.js';
import { createDriver } from '../drivers/registry.js';
import { PrismError, isPrismError } from '../errors.js';
import type { SlotAssignment } from '../gen/prism/config/v1/namespace_pb.js';

export interface Credentials {
  username: string;
  password: string;
  /** Gives the credentials back (revokes their lease) once no driver uses them. */
  release?: () => Promise<void>;
}

/** What a namespace's `auth.vault` says (empty strings: not said). */
export interface NamespaceVault {
  address: string;
  role: string;
  authMount: string;
}

export interface SlotContext {
  namespace: string;
  pattern: string;
  slot: string;
  backend: string;
  /** The namespace's Vault settings, when it enables Vault. */
  vault?: NamespaceVault;
}

/** Turns a slot's credential reference (`vault://...`, `${ENV}`) into credentials. */
export type CredentialResolver = (ref: string, slot: SlotContext) => Promise<Credentials | undefined>;

export type DriverFactory = (
  backend: string,
  options: DriverOptions,
  slot: SlotContext,
) => Promise<AnyDriver>;

export interface SlotOptions {
  /** Directory for file-backed drivers (sqlite). */
  dataDir?: string;
  credentials?: CredentialResolver;
  /** Builds drivers; default: the driver registry. Tests wrap drivers here. */
  driverFactory?: DriverFactory;
  /**
   * Slots connected per caller instead of at start (per-request sessions, DESIGN.md §7): each
   * caller's driver is opened with `openFor` and that caller's credentials.
   */
  perCaller?: readonly string[];
  /** The namespace's Vault settings, handed to the credential resolver. */
  vault?: NamespaceVault;
  /** The namespace's `needs.retention` in milliseconds, handed to every driver. */
  retentionMs?: number;
}

interface Bound {
  assignment: SlotAssignment;
  spec: SlotSpec;
  driver: AnyDriver;
  connected: boolean;
  release?: () => Promise<void>;
}

/** A slot's driver opened for one caller; `close()` closes it, then releases its credentials. */
export interface CallerDriver {
  readonly driver: AnyDriver;
  close(): Promise<void>;
}

function fitsSlot(capabilities: ReadonlySet<Capability>, spec: SlotSpec): boolean {
  return spec.needs.some((alternative) => alternative.every((cap) => capabilities.has(cap)));
}

export class SlotSet {
  private readonly label: string;
  private bound: Bound[] = [];
  private started = false;

  constructor(
    readonly namespace: string,
    readonly pattern: string,
    readonly type: string,
    private readonly assignments: readonly SlotAssignment[],
    private readonly options: SlotOptions = {},
  ) {
    this.label = `${namespace}/${pattern}`;
    const spec = PATTERNS[type];
    if (spec === undefined) {
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `${this.label}: unknown pattern type ${JSON.stringify(type)}`,
      );
    }
    const seen = new Set<string>();
    for (const assignment of assignments) {
      if (!Object.hasOwn(spec.slots, assignment.slot)) {
        throw new PrismError(
          'E_INVALID_ARGUMENT',
          `${this.label}: a ${type} pattern has no slot ${JSON.stringify(assignment.slot)}; ` +
            `its slots are ${Object.keys(spec.slots).join(', ')}`,
        );
      }
      if (seen.has(assignment.slot)) {
        throw new PrismError(
          'E_INVALID_ARGUMENT',
          `${this.label}: slot ${assignment.slot} is assigned twice`,
        );
      }
      seen.add(assignment.slot);
    }
    for (const [name, slot] of Object.entries(spec.slots)) {
      if (slot.required && !seen.has(name)) {
        throw new PrismError('E_INVALID_ARGUMENT', `${this.label}: required slot ${name} is not bound`);
      }
    }
  }

  /** True when the namespace bound this slot. */
  has(slot: string): boolean {
    return this.assignments.some((a) => a.slot === slot);
  }

  /** The backend bound to a slot, or undefined. */
  backend(slot: string): string | undefined {
    return this.assignments.find((a) => a.slot === slot)?.backend;
  }

  /** The started driver of a slot; undefined when the slot is not bound. */
  optional(slot: string): AnyDriver | undefined {
    return this.bound.find((b) => b.assignment.slot === slot)?.driver;
  }

  /** True when the slot is connected per caller (`openFor`), not at start. */
  perCaller(slot: string): boolean {
    return this.has(slot) && (this.options.perCaller ?? []).includes(slot);
  }

  /** The started driver of a required slot. */
  driver(slot: string): AnyDriver {
    const driver = this.optional(slot);
    if (driver === undefined) {
      if (this.perCaller(slot)) {
        throw new PrismError(
          'E_UNAVAILABLE',
          `${this.label}: slot ${slot} connects with each caller's own credentials and this call has none`,
          { hint: 'call through a proxy that verifies tokens and has Vault configured' },
        );
      }
      throw new PrismError('E_UNAVAILABLE', `${this.label}: slot ${slot} is not started`);
    }
    return driver;
  }

  /** Creates, checks and connects every slot's driver but the per-caller ones; on failure closes what it opened. */
  async start(): Promise<void> {
    if (this.started) return;
    const spec = PATTERNS[this.type]!;
    const created: Bound[] = [];
    try {
      for (const assignment of this.assignments) {
        if (this.perCaller(assignment.slot)) continue;
        created.push(await this.create(assignment, spec.slots[assignment.slot]!, this.options.credentials));
      }
      for (const b of created) this.checkCapabilities(b);
      for (const b of created) {
        await b.driver.connect();
        b.connected = true;
      }
    } catch (err) {
      await closeAll(created);
      throw err;
    }
    this.bound = created;
    this.started = true;
  }

  /** A driver of `slot` for one caller, made with that caller's credentials and connected. */
  async openFor(slot: string, credentials: CredentialResolver): Promise<CallerDriver> {
    const assignment = this.assignments.find((a) => a.slot === slot);
    if (assignment === undefined) {
      throw new PrismError('E_INVALID_ARGUMENT', `${this.label}: slot ${slot} is not bound`);
    }
    const b = await this.create(assignment, PATTERNS[this.type]!.slots[slot]!, credentials);
    try {
      this.checkCapabilities(b);
      await b.driver.connect();
      b.connected = true;
    } catch (err) {
      await closeAll([b]).catch(() => undefined);
      throw err;
    }
    return { driver: b.driver, close: () => closeAll([b]) };
  }

  /** Closes every driver in reverse order; rethrows the first failure after trying them all. */
  async stop(): Promise<void> {
    const bound = this.bound;
    this.bound = [];
    this.started = false;
    await closeAll(bound);
  }

  async health(): Promise<void> {
    if (!this.started) {
      throw new PrismError('E_UNAVAILABLE', `${this.label}: not started`);
    }
    await Promise.all(this.bound.map((b) => b.driver.health()));
  }

  private context(assignment: SlotAssignment): SlotContext {
    return {
      namespace: this.namespace,
      pattern: this.pattern,
      slot: assignment.slot,
      backend: assignment.backend,
      ...(this.options.vault !== undefined ? { vault: this.options.vault } : {}),
    };
  }

  private async create(
    assignment: SlotAssignment,
    spec: SlotSpec,
    resolver: CredentialResolver | undefined,
  ): Promise<Bound> {
    const context = this.context(assignment);
    const backend = BACKENDS[assignment.backend];
    if (backend === undefined) {
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `${this.label}: slot ${assignment.slot} is bound to unknown backend ${JSON.stringify(assignment.backend)}`,
      );
    }
    let credentials: Credentials | undefined;
    if (assignment.credentialRef !== '') {
      if (resolver === undefined) {
        throw new PrismError(
          'E_INVALID_ARGUMENT',
          `${this.label}: slot ${assignment.slot} names credentials (${assignment.credentialRef}) but no credential resolver is configured`,
        );
      }
      credentials = await resolver(assignment.credentialRef, context);
    }
    const release = credentials?.release;
    const options: DriverOptions = {
      endpoint: assignment.endpoint !== '' ? assignment.endpoint : backend.defaultEndpoint,
      namespace: this.namespace,
      ...(this.options.dataDir !== undefined ? { dataDir: this.options.dataDir } : {}),
      ...(this.options.retentionMs !== undefined ? { retentionMs: this.options.retentionMs } : {}),
      ...(credentials !== undefined
        ? { credentials: { username: credentials.username, password: credentials.password } }
        : {}),
    };
    const factory =
      this.options.driverFactory ?? ((name: string, opts: DriverOptions) => createDriver(name, opts));
    try {
      const driver = await factory(assignment.backend, options, context);
      return { assignment, spec, driver, connected: false, ...(release ? { release } : {}) };
    } catch (err) {
      await release?.().catch(() => undefined);
      if (isPrismError(err)) throw err;
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `${this.label}: cannot build the ${assignment.backend} driver for slot ${assignment.slot}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  private checkCapabilities(b: Bound): void {
    if (fitsSlot(b.driver.capabilities, b.spec)) return;
    const has = [...b.driver.capabilities].join('+') || 'nothing';
    throw new PrismError(
      'E_CAPABILITY_MISSING',
      `namespace ${this.namespace}, pattern ${this.pattern}: slot ${b.assignment.slot} is bound to ` +
        `${b.assignment.backend}, which implements ${has}; the slot needs ${describeNeeds(b.spec)}`,
      { hint: `bind slot ${b.assignment.slot} to a backend that implements ${describeNeeds(b.spec)}` },
    );
  }
}

async function closeAll(bound: readonly Bound[]): Promise<void> {
  let failure: { error: unknown } | undefined;
  for (const b of [...bound].reverse()) {
    try {
      await b.driver.close();
    } catch (err) {
      failure ??= { error: err };
    }
    try {
      await b.release?.();
    } catch (err) {
      failure ??= { error: err };
    }
  }
  if (failure) throw failure.error;
}
