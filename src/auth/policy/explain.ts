import type { NamespaceRequest } from '../../gen/prism/config/v1/namespace_pb.js';
import { PrismError } from '../../errors.js';
import { didYouMean } from '../../config/suggest.js';
import { cedar } from './cedar.js';
import { DATA_ACTIONS, MAILBOX_ACTIONS, dataActionOf, type ActionSpec } from './model.js';
import { namespacePolicies } from './namespace-policies.js';
import { CompiledPolicySet, type PolicyResource } from './policy-set.js';

/** One decision to explain, as `policy test` flags and `policy check` cases give it. */
export interface DecisionQuestion {
  principal: {
    subject: string;
    email?: string | undefined;
    tenant?: string | undefined;
    groups?: readonly string[] | undefined;
    scopes?: readonly string[] | undefined;
    claims?: Readonly<Record<string, string>> | undefined;
  };
  /** An action id (`keyvalue.get`) or a gRPC method (`Get`). */
  action: string;
  /** `<pattern>:<key or topic>`, or only the key or topic when one pattern serves the action. */
  resource?: string | undefined;
  context?: {
    /** ISO 8601; default: now. */
    time?: string | undefined;
    client_ip?: string | undefined;
    token_age_seconds?: number | undefined;
  };
}

export interface ExplainedPolicy {
  id: string;
  effect: 'permit' | 'forbid';
  source: string;
  line: number;
  text: string;
}

export interface Explanation {
  namespace: string;
  decision: 'allow' | 'deny';
  action: string;
  resource: PolicyResource;
  /** The policies that decided: the permits that allowed, or the forbids that denied. */
  policies: ExplainedPolicy[];
  /** Policies that failed to evaluate and were skipped. */
  errors: string[];
  policyVersion: string;
}

const PATTERN_TYPE: Readonly<Record<string, string>> = {
  keyvalue: 'keyvalue',
  producer: 'producer',
  consumer: 'consumer',
  sessions: 'session-manager',
  mailbox: 'mailbox',
};

/** Decides one question against a namespace's policies, offline, and says which policies decided. */
export function explainDecision(ns: NamespaceRequest, question: DecisionQuestion): Explanation {
  const action = actionNamed(question.action);
  const resource = resourceOf(ns, action, question.resource);
  const now = question.context?.time ? parseTime(question.context.time) : new Date();
  const age = question.context?.token_age_seconds;
  const set = new CompiledPolicySet(namespacePolicies(ns));
  const p = question.principal;
  const decision = set.evaluate(
    action,
    {
      subject: p.subject,
      email: p.email,
      tenant: p.tenant ?? '',
      groups: p.groups ?? [],
      scopes: p.scopes ?? [],
      claims: p.claims ?? {},
      issuedAt: age === undefined ? undefined : Math.floor(now.getTime() / 1000) - age,
    },
    resource,
    { now, clientIp: question.context?.client_ip },
  );
  return {
    namespace: ns.namespace,
    decision: decision.allowed ? 'allow' : 'deny',
    action: action.id,
    resource,
    policies: decision.policies.map((id) => {
      const policy = set.policies.get(id)!;
      const json = cedar().policyToJson(policy.text);
      const effect = json.type === 'success' ? json.json.effect : 'permit';
      return { id, effect, source: policy.source, line: policy.line, text: policy.text };
    }),
    errors: decision.errors,
    policyVersion: set.version,
  };
}

/** The action an id or a gRPC method names. */
export function actionNamed(name: string): ActionSpec {
  const all = [...new Set([...Object.values(DATA_ACTIONS), ...Object.values(MAILBOX_ACTIONS)])];
  const byId = all.find((a) => a.id === name);
  if (byId) return byId;
  const byMethod = dataActionOf(name);
  if (byMethod.id !== 'data.other') return byMethod;
  const names = [...all.map((a) => a.id), ...Object.keys(DATA_ACTIONS)];
  throw new PrismError('E_USAGE', `unknown action '${name}'`, {
    hint: didYouMean(name, names) || `one of: ${all.map((a) => a.id).join(', ')}`,
  });
}

function resourceOf(ns: NamespaceRequest, action: ActionSpec, given = ''): PolicyResource {
  const base = { namespace: ns.namespace, team: ns.team };
  const type = PATTERN_TYPE[action.id.split('.')[0] ?? ''];
  const serving = ns.patterns.filter((p) => p.type === type);
  const colon = given.indexOf(':');
  const named = colon >= 0 ? serving.find((p) => p.name === given.slice(0, colon)) : undefined;
  const rest = named ? given.slice(colon + 1) : given;
  const pattern = named ?? (serving.length === 1 ? serving[0] : undefined);
  if (!pattern)
    throw new PrismError(
      'E_USAGE',
      serving.length === 0
        ? `namespace '${ns.namespace}' has no ${type ?? ''} pattern for ${action.id}`
        : `name the pattern: --resource <pattern>:<${action.resource === 'Topic' ? 'topic' : 'key'}>, one of ${serving.map((p) => p.name).join(', ')}`,
    );
  if (action.resource === 'Key') return { kind: 'Key', ...base, pattern: pattern.name, key: rest };
  if (action.resource === 'Topic')
    return { kind: 'Topic', ...base, pattern: pattern.name, topic: rest || pattern.settings?.topic || '' };
  return { kind: 'Namespace', ...base, pattern: pattern.name };
}

function parseTime(value: string): Date {
  const time = new Date(value);
  if (Number.isNaN(time.getTime()))
    throw new PrismError('E_USAGE', `time '${value}' is not an ISO 8601 date and time`, {
      hint: 'e.g. 2026-12-03T10:00:00Z',
    });
  return time;
}
