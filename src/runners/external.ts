/**
 * The runner of a pattern module's type (docs/sdk.md): its slots bound like a built-in pattern's
 * (SlotSet checks capabilities at start), its `settings.custom` with defaults, then the module's
 * own factory. Only launched runner processes build these (`runner serve --pattern-module`).
 */
import { customSettings, externalPattern } from '../config/external-patterns.js';
import { PrismError } from '../errors.js';
import type { NamespaceRequest, PatternAssignment } from '../gen/prism/config/v1/namespace_pb.js';
import type { RunnerLogger } from './lifecycle.js';
import { SlotSet, type CredentialResolver } from './slots.js';
import type { Runner } from './types.js';

export interface ExternalRunnerOptions {
  dataDir?: string;
  credentials?: CredentialResolver;
  logger?: RunnerLogger;
}

export function createExternalRunner(
  ns: NamespaceRequest,
  patternName: string,
  assignment: PatternAssignment,
  options: ExternalRunnerOptions = {},
): Runner {
  const pattern = ns.patterns.find((p) => p.name === patternName);
  const type = assignment.type || pattern?.type || '';
  const definition = externalPattern(type);
  if (!pattern || !definition)
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `${ns.namespace}/${patternName}: no pattern module serves type '${type}'`,
    );
  const slots = new SlotSet(ns.namespace, patternName, type, assignment.slots, {
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
  });
  const runner = definition.createRunner({
    namespace: ns.namespace,
    pattern: patternName,
    type,
    slots,
    settings: customSettings(type, pattern.settings?.custom ?? {}),
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
  });
  if (runner.type !== type || runner.pattern !== patternName || runner.namespace !== ns.namespace)
    throw new PrismError(
      'E_PATTERN_MODULE',
      `${ns.namespace}/${patternName}: the ${type} module built a runner for ${runner.namespace}/${runner.pattern} (${runner.type})`,
      { hint: 'return namespace, pattern and type from the PatternContext the factory gets' },
    );
  return runner;
}
