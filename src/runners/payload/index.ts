/**
 * Builds a messaging runner's payload stages from its pattern's settings (src/runners/payload/
 * stages.ts). Each stage kind contributes one factory; the order of STAGE_FACTORIES is the order
 * of `seal` on publish (and the reverse of `open` on delivery).
 */
import type { VaultAccess } from '../../auth/vault-transit.js';
import type { NamespaceRequest } from '../../gen/prism/config/v1/namespace_pb.js';
import type { RunnerLogger } from '../lifecycle.js';
import type { SettingsReader } from '../settings.js';
import type { SlotSet } from '../slots.js';
import { encryptionStage } from './encryption-stage.js';
import { schemaStageFactory } from './schema-stage.js';
import type { SchemaSource } from './schema-source.js';
import { claimCheckStage } from './claim-check-stage.js';
import { PayloadPipeline, type PayloadStage } from './stages.js';

export interface StageFactoryInput {
  /** "namespace/pattern", for errors. */
  readonly label: string;
  readonly namespace: NamespaceRequest;
  readonly pattern: string;
  readonly type: 'producer' | 'consumer';
  readonly reader: SettingsReader;
  readonly slots: SlotSet;
  readonly logger?: RunnerLogger;
  /** The process's Vault sessions with its service identity, when it has Vault configured. */
  readonly vault?: VaultAccess;
  /** The latest schema of a registry subject (the schema stage); absent without an admin. */
  readonly schemas?: SchemaSource;
}

/** Returns the stage the settings ask for, or undefined when they ask for none. */
export type StageFactory = (input: StageFactoryInput) => PayloadStage | undefined;

const STAGE_FACTORIES: readonly StageFactory[] = [schemaStageFactory, encryptionStage, claimCheckStage];

export function buildPayloadPipeline(input: StageFactoryInput): PayloadPipeline {
  const stages: PayloadStage[] = [];
  for (const factory of STAGE_FACTORIES) {
    const stage = factory(input);
    if (stage !== undefined) stages.push(stage);
  }
  return new PayloadPipeline(stages);
}
