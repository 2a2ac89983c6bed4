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
}

export interface SlotContext {
  namespace: string;
  pattern: string;
  slot: string;
  backend: string;
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
}

interface Bound {
  assignment: SlotAssignment;
  spec: SlotSpec;
  driver: AnyDriver;
  connected: boolean;
}

function fitsSlot(capabilities: ReadonlySet<Capability>, spec: SlotSpec): boolean {
  return spec.needs.some((alternative) => alternative.every((cap) => capabilities.has(cap)));
}

export class SlotSet {
  private readonly label: string;
  private bound: Bound[] = [];

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

  /** The started driver of a required slot. */
  driver(slot: string): AnyDriver {
    const driver = this.optional(slot);
    if (driver === undefined) {
      throw new PrismError('E_UNAVAILABLE', `${this.label}: slot ${slot} is not started`);
    }
    return driver;
  }

  /** Creates, checks and connects every slot's driver; on failure closes what it opened. */
  async start(): Promise<void> {
    if (this.bound.length > 0) return;
    const spec = PATTERNS[this.type]!;
    const created: Bound[] = [];
    try {
      for (const assignment of this.assignments) {
        const driver = await this.create(assignment);
        created.push({ assignment, spec: spec.slots[assignment.slot]!, driver, connected: false });
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
  }

  /** Closes every driver in reverse order; rethrows the first failure after trying them all. */
  async stop(): Promise<void> {
    const bound = this.bound;
    this.bound = [];
    await closeAll(bound);
  }

  async health(): Promise<void> {
    if (this.bound.length === 0) {
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
    };
  }

  private async create(assignment: SlotAssignment): Promise<AnyDriver> {
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
      if (this.options.credentials === undefined) {
        throw new PrismError(
          'E_INVALID_ARGUMENT',
          `${this.label}: slot ${assignment.slot} names credentials (${assignment.credentialRef}) but no credential resolver is configured`,
        );
      }
      credentials = await this.options.credentials(assignment.credentialRef, context);
    }
    const options: DriverOptions = {
      endpoint: assignment.endpoint !== '' ? assignment.endpoint : backend.defaultEndpoint,
      namespace: this.namespace,
      ...(this.options.dataDir !== undefined ? { dataDir: this.options.dataDir } : {}),
      ...(credentials !== undefined ? { credentials } : {}),
    };
    const factory =
      this.options.driverFactory ?? ((name: string, opts: DriverOptions) => createDriver(name, opts));
    try {
      return await factory(assignment.backend, options, context);
    } catch (err) {
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
  let failure: unknown;
  for (const b of [...bound].reverse()) {
    try {
      await b.driver.close();
    } catch (err) {
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
}
