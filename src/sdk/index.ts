/**
 * prismctl/sdk: the Pattern SDK (docs/sdk.md). Everything a pattern module needs, and nothing
 * else: its exports follow SDK_VERSION's promise (docs/sdk.md, "Stability").
 */
export { SDK_MAJOR, SDK_VERSION } from './version.js';
export {
  definePattern,
  type CustomSettingSpec,
  type PatternApi,
  type PatternApis,
  type PatternContext,
  type PatternDefinition,
} from './definition.js';
// Errors: a runner fails with a PrismError; its code becomes the client's gRPC status.
export { PrismError, isPrismError, type PrismErrorCode } from '../errors.js';
// Runners (src/runners/types.ts).
export type {
  BackendSession,
  CallerSession,
  Envelope,
  SessionContext,
  TraceContext,
  ConsumerDelivery,
  ConsumerRunnerApi,
  ConsumerSubscription,
  KeyValueCallsApi,
  KeyValueRunnerApi,
  ProducerRunnerApi,
  PublishInput,
  PublishLane,
  PublishResult,
  Runner,
} from '../runners/types.js';
export type { RunnerLogger } from '../runners/lifecycle.js';
// Slot binding (src/runners/slots.ts).
export {
  SlotSet,
  type CredentialResolver,
  type Credentials,
  type DriverFactory,
  type SlotContext,
  type SlotOptions,
} from '../runners/slots.js';
export type { Capability, SlotSpec } from '../config/registry.js';
export { slotAssignment, type SlotAssignment } from './slot-assignment.js';
export { createPatternRunner } from './pattern-runner.js';
// Drivers (src/drivers/interfaces.ts) and the registry that builds the built-in ones.
export type * from '../drivers/interfaces.js';
export { createDriver } from '../drivers/registry.js';
// Envelopes (src/runners/envelope.ts).
export * from '../runners/envelope.js';
// Payload stages (src/runners/payload/).
export type { PayloadStage, StageContext } from '../runners/payload/stages.js';
// Units of settings: "15m" → ms, "1MiB" → bytes.
export { parseDuration, parseSize } from '../config/units.js';
// Conformance suites, run with the caller's test functions.
export type { TestApi } from './conformance/test-api.js';
export { keyValueDriverConformance } from './conformance/keyvalue-driver.js';
export { keyValueRunnerConformance } from './conformance/keyvalue-runner.js';
export { producerRunnerConformance, type ProducerConformanceRunners } from './conformance/producer-runner.js';
export { consumerRunnerConformance, type ConsumerConformanceRunners } from './conformance/consumer-runner.js';
