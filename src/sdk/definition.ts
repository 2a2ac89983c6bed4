import type { SlotSpec } from '../config/registry.js';
import type { RunnerLogger } from '../runners/lifecycle.js';
import type { SlotSet } from '../runners/slots.js';
import type { ConsumerRunnerApi, KeyValueRunnerApi, ProducerRunnerApi } from '../runners/types.js';

/** The prism.data.v1 API a pattern serves, and what its runner must implement for it. */
export interface PatternApis {
  keyvalue: KeyValueRunnerApi;
  producer: ProducerRunnerApi;
  consumer: ConsumerRunnerApi;
}

export type PatternApi = keyof PatternApis;

/** One setting of a pattern module's type (`settings.custom.<name>` in a namespace file). */
export interface CustomSettingSpec {
  readonly description: string;
  readonly required?: boolean;
  /** A regular expression the whole value must match, e.g. `^[0-9]+$`. */
  readonly pattern?: string;
  /** Handed to the runner when the namespace leaves the setting out. */
  readonly default?: string;
}

/** What a runner factory gets: the bound slots (not yet started) and the settings. */
export interface PatternContext {
  readonly namespace: string;
  readonly pattern: string;
  readonly type: string;
  /** Started by the runner's `start()`, stopped by its `stop()` (use `slots.driver(name)`). */
  readonly slots: SlotSet;
  /** The namespace's `settings.custom`, defaults filled in, every value checked by validation. */
  readonly settings: Readonly<Record<string, string>>;
  readonly logger?: RunnerLogger;
}

/**
 * A pattern type from outside prismctl: what a pattern module's default export is (docs/sdk.md).
 * Validation reads the type, versions, slots and settings; `runner serve` calls `createRunner`.
 */
export interface PatternDefinition<A extends PatternApi = PatternApi> {
  /** The SDK major the module was built against (SDK_MAJOR). */
  readonly sdkVersion: number;
  /** The `type:` namespaces write; lower-case letters, digits and '-', not a built-in type. */
  readonly type: string;
  readonly description: string;
  /** Registered versions, oldest first; default `['v1']`. */
  readonly versions?: readonly string[];
  /** The data API the proxy routes to this pattern's runner. */
  readonly api: A;
  readonly slots: Readonly<Record<string, SlotSpec>>;
  readonly settings?: Readonly<Record<string, CustomSettingSpec>>;
  createRunner(context: PatternContext): PatternApis[A];
}

/** Checks the shape at compile time and returns the definition unchanged. */
export function definePattern<A extends PatternApi>(definition: PatternDefinition<A>): PatternDefinition<A> {
  return definition;
}
