/**
 * Builds the runner for one pattern of an applied namespace: the settings come from the
 * namespace's declaration (defaults from the registry), the slots from the control plane's
 * assignment. The runner is not started; `start()` connects its slots and refuses a slot whose
 * backend lacks a capability the slot needs (E_CAPABILITY_MISSING).
 */
import type { VaultAccess } from '../auth/vault-transit.js';
import { PrismError } from '../errors.js';
import type { NamespaceRequest, PatternAssignment } from '../gen/prism/config/v1/namespace_pb.js';
import { ConsumerRunner, readConsumerSettings, type ConsumerOptions } from './consumer/runner.js';
import { KeyValueRunner, readKeyValueSettings } from './keyvalue/runner.js';
import { MailboxRunner, readMailboxSettings, type MailboxOptions } from './mailbox/runner.js';
import type { RunnerLogger } from './lifecycle.js';
import { ProducerRunner, readProducerSettings, type ProducerOptions } from './producer/runner.js';
import {
  SessionManagerRunner,
  readSessionManagerSettings,
  type SessionManagerOptions,
} from './session-manager/runner.js';
import { parseDuration } from '../config/units.js';
import { namespaceDelivery } from './delivery.js';
import { buildPayloadPipeline } from './payload/index.js';
import type { SchemaSource } from './payload/schema-source.js';
import { SettingsReader } from './settings.js';
import { SlotSet, type CredentialResolver, type DriverFactory } from './slots.js';

export interface CreateRunnerOptions {
  /** Directory for file-backed drivers (sqlite). */
  dataDir?: string;
  /** Resolves slots' credential references (`vault://`, `${ENV}`). */
  credentials?: CredentialResolver;
  /** Builds drivers; default: the driver registry. */
  driverFactory?: DriverFactory;
  /**
   * Per-request sessions are available (a verifying proxy with Vault): a keyvalue store of an
   * auth-enabled, session-aware namespace whose credentials come from Vault connects per caller.
   */
  callerSessions?: boolean;
  /** Vault sessions of the process's service identity (payload encryption's transit calls). */
  vault?: VaultAccess;
  logger?: RunnerLogger;
  /** Schemas of registry subjects, for producers with a `schema` setting (the proxy's admin). */
  schemas?: SchemaSource;
  producer?: Omit<ProducerOptions, 'logger'>;
  consumer?: Omit<ConsumerOptions, 'logger'>;
  sessionManager?: SessionManagerOptions;
  mailbox?: Omit<MailboxOptions, 'logger' | 'delivery'>;
}

export type AnyRunner =
  KeyValueRunner | ProducerRunner | ConsumerRunner | SessionManagerRunner | MailboxRunner;

export function createRunner(
  ns: NamespaceRequest,
  patternName: string,
  assignment: PatternAssignment,
  options: CreateRunnerOptions = {},
): AnyRunner {
  const label = `${ns.namespace}/${patternName}`;
  const pattern = ns.patterns.find((p) => p.name === patternName);
  if (pattern === undefined) {
    throw new PrismError(
      'E_NOT_FOUND',
      `namespace ${ns.namespace} declares no pattern ${JSON.stringify(patternName)}`,
    );
  }
  if (assignment.name !== '' && assignment.name !== patternName) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `${label}: the assignment is for pattern ${JSON.stringify(assignment.name)}`,
    );
  }
  const type = assignment.type !== '' ? assignment.type : pattern.type;
  if (pattern.type !== '' && pattern.type !== type) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `${label}: declared as ${pattern.type} but assigned as ${type}`,
    );
  }
  const vault = ns.auth?.vault?.enabled ? ns.auth.vault : undefined;
  const perCaller =
    options.callerSessions === true &&
    type === 'keyvalue' &&
    ns.auth?.enabled === true &&
    assignment.sessionAware
      ? assignment.slots.filter((s) => s.credentialRef.startsWith('vault://')).map((s) => s.slot)
      : [];
  const retentionMs = ns.needs?.retention ? parseDuration(ns.needs.retention) : undefined;
  const delivery = { delivery: namespaceDelivery(ns) };
  const slots = new SlotSet(ns.namespace, patternName, type, assignment.slots, {
    ...(retentionMs !== undefined && Number.isFinite(retentionMs) ? { retentionMs } : {}),
    ...(perCaller.length > 0 ? { perCaller } : {}),
    ...(vault ? { vault: { address: vault.address, role: vault.role, authMount: vault.authMount } } : {}),
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    ...(options.driverFactory !== undefined ? { driverFactory: options.driverFactory } : {}),
  });
  const reader = new SettingsReader(type, label, pattern.settings);
  const logger = options.logger !== undefined ? { logger: options.logger } : {};
  const payload = (runnerType: 'producer' | 'consumer') => ({
    payload: buildPayloadPipeline({
      label,
      namespace: ns,
      pattern: patternName,
      type: runnerType,
      reader,
      slots,
      ...logger,
      ...(options.vault !== undefined ? { vault: options.vault } : {}),
      ...(options.schemas !== undefined ? { schemas: options.schemas } : {}),
    }),
  });

  switch (type) {
    case 'keyvalue':
      return new KeyValueRunner(ns.namespace, patternName, slots, readKeyValueSettings(reader));
    case 'producer':
      return new ProducerRunner(ns.namespace, patternName, slots, readProducerSettings(label, reader), {
        ...delivery,
        ...payload('producer'),
        ...options.producer,
        ...logger,
      });
    case 'consumer':
      return new ConsumerRunner(ns.namespace, patternName, slots, readConsumerSettings(label, reader), {
        ...delivery,
        ...payload('consumer'),
        ...options.consumer,
        ...logger,
      });
    case 'session-manager':
      return new SessionManagerRunner(
        ns.namespace,
        patternName,
        slots,
        readSessionManagerSettings(reader),
        options.sessionManager,
      );
    case 'mailbox':
      return new MailboxRunner(ns.namespace, patternName, slots, readMailboxSettings(label, reader), {
        ...delivery,
        ...options.mailbox,
        ...logger,
      });
    default:
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `${label}: no runner for pattern type ${JSON.stringify(type)}`,
      );
  }
}
