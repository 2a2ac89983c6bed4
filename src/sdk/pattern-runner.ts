import { customSettings, registerPattern } from '../config/external-patterns.js';
import type { RunnerLogger } from '../runners/lifecycle.js';
import { SlotSet, type CredentialResolver } from '../runners/slots.js';
import type { PatternApi, PatternApis, PatternDefinition } from './definition.js';
import { slotAssignment } from './slot-assignment.js';

/**
 * Builds a definition's runner the way `runner serve` does (slots bound and capability-checked at
 * start, setting defaults filled in), without a proxy: for a pattern's own tests and the
 * conformance suites. Registers the definition's type in this process first.
 */
export function createPatternRunner<A extends PatternApi>(
  definition: PatternDefinition<A>,
  init: {
    namespace: string;
    pattern?: string;
    slots: ReadonlyArray<{ slot: string; backend: string; endpoint?: string; credentialRef?: string }>;
    settings?: Readonly<Record<string, string>>;
    dataDir?: string;
    credentials?: CredentialResolver;
    logger?: RunnerLogger;
  },
): PatternApis[A] {
  registerPattern(definition as PatternDefinition, `test of ${definition.type}`);
  const pattern = init.pattern ?? definition.type;
  const slots = new SlotSet(init.namespace, pattern, definition.type, init.slots.map(slotAssignment), {
    ...(init.dataDir !== undefined ? { dataDir: init.dataDir } : {}),
    ...(init.credentials !== undefined ? { credentials: init.credentials } : {}),
  });
  return definition.createRunner({
    namespace: init.namespace,
    pattern,
    type: definition.type,
    slots,
    settings: customSettings(definition.type, init.settings ?? {}),
    ...(init.logger !== undefined ? { logger: init.logger } : {}),
  });
}
