/**
 * Small builders for runner tests: a namespace with one pattern, its assignment, and the runner;
 * a driver wrapper that fails on purpose; a logger that remembers; a poll helper.
 */
import { create } from '@bufbuild/protobuf';
import {
  NamespaceRequestSchema,
  NeedsSchema,
  PatternAssignmentSchema,
  PatternSchema,
  PatternSettingsSchema,
  SlotAssignmentSchema,
  SlotBindingSchema,
  type Needs,
  type PatternSettings,
} from '../../../src/gen/prism/config/v1/namespace_pb.js';
import type { AnyDriver, DriverOptions } from '../../../src/drivers/interfaces.js';
import { BackendDownError } from '../../../src/drivers/interfaces.js';
import { createDriver } from '../../../src/drivers/registry.js';
import {
  createRunner,
  type AnyRunner,
  type CreateRunnerOptions,
} from '../../../src/runners/create-runner.js';
import type { RunnerLogger } from '../../../src/runners/lifecycle.js';
import type { DriverFactory, SlotContext } from '../../../src/runners/slots.js';

let counter = 0;

/** A namespace name no other test uses (memstore shares state per namespace in a process). */
export function uniqueNamespace(prefix = 'rt'): string {
  counter++;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

export interface RunnerSpec {
  type: string;
  name?: string;
  namespace?: string;
  /** slot → backend, or backend plus endpoint. */
  slots: Record<string, string | { backend: string; endpoint?: string }>;
  settings?: Partial<Omit<PatternSettings, '$typeName'>>;
  /** The namespace's `needs` (delivery, retention). */
  needs?: Partial<Omit<Needs, '$typeName'>>;
  /** Other patterns the namespace declares (only their type and settings; no slots). */
  others?: ReadonlyArray<{
    name: string;
    type: string;
    settings: Partial<Omit<PatternSettings, '$typeName'>>;
  }>;
}

/** A runner built the way the proxy builds it: declaration + assignment → createRunner. */
export function buildRunner<R extends AnyRunner = AnyRunner>(
  spec: RunnerSpec,
  options: CreateRunnerOptions = {},
): R {
  const namespace = spec.namespace ?? uniqueNamespace();
  const name = spec.name ?? spec.type;
  const bindings = Object.entries(spec.slots).map(([slot, b]) => ({
    slot,
    ...(typeof b === 'string' ? { backend: b } : b),
  }));
  const ns = create(NamespaceRequestSchema, {
    namespace,
    team: 'test',
    ...(spec.needs ? { needs: create(NeedsSchema, spec.needs) } : {}),
    patterns: [
      create(PatternSchema, {
        name,
        type: spec.type,
        slots: Object.fromEntries(
          bindings.map((b) => [b.slot, create(SlotBindingSchema, { backend: b.backend })]),
        ),
        settings: create(PatternSettingsSchema, spec.settings ?? {}),
      }),
      ...(spec.others ?? []).map((other) =>
        create(PatternSchema, {
          name: other.name,
          type: other.type,
          settings: create(PatternSettingsSchema, other.settings),
        }),
      ),
    ],
  });
  const assignment = create(PatternAssignmentSchema, {
    name,
    type: spec.type,
    version: 'v1',
    slots: bindings.map((b) =>
      create(SlotAssignmentSchema, { slot: b.slot, backend: b.backend, endpoint: b.endpoint ?? '' }),
    ),
  });
  return createRunner(ns, name, assignment, options) as R;
}

/**
 * Wraps every driver the runner builds for `slot`: `failures` of the named methods throw
 * BackendDownError before the real driver is called. `calls` counts attempts per method.
 */
export function flakyFactory(
  slot: string,
  methods: readonly string[],
  failures: number,
): { factory: DriverFactory; calls: Record<string, number>; drivers: AnyDriver[] } {
  const calls: Record<string, number> = {};
  const drivers: AnyDriver[] = [];
  let remaining = failures;
  const factory: DriverFactory = async (backend: string, options: DriverOptions, context: SlotContext) => {
    const driver = await createDriver(backend, options);
    if (context.slot !== slot) return driver;
    drivers.push(driver);
    const wrapped: Record<string, unknown> = Object.create(driver);
    for (const method of methods) {
      const real = (driver as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[method];
      if (typeof real !== 'function') continue;
      wrapped[method] = async (...args: unknown[]) => {
        calls[method] = (calls[method] ?? 0) + 1;
        if (remaining > 0) {
          remaining--;
          throw new BackendDownError(backend, `${method}: injected failure`);
        }
        return real.apply(driver, args);
      };
    }
    return wrapped as unknown as AnyDriver;
  };
  return { factory, calls, drivers };
}

export interface LogEntry {
  level: 'info' | 'warn' | 'error';
  msg: string;
  obj: object;
}

export function memoryLogger(): RunnerLogger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    info: (obj, msg) => entries.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => entries.push({ level: 'warn', msg, obj }),
    error: (obj, msg) => entries.push({ level: 'error', msg, obj }),
  };
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (value: Uint8Array | undefined): string | undefined =>
  value === undefined ? undefined : new TextDecoder().decode(value);

export const ALICE = { subject: 'user:alice', tenant: 'acme', roles: ['writer', 'ops,oncall'] };
