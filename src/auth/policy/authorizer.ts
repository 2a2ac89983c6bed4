import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { NamespaceRequest } from '../../gen/prism/config/v1/namespace_pb.js';
import { toJsonString } from '@bufbuild/protobuf';
import { NamespaceRequestSchema } from '../../gen/prism/config/v1/namespace_pb.js';
import { PrismError } from '../../errors.js';
import type { NamedPolicy } from './defaults.js';
import type { ActionSpec } from './model.js';
import { namespacePolicies } from './namespace-policies.js';
import {
  CompiledPolicySet,
  type PolicyCallContext,
  type PolicyDecision,
  type PolicyPrincipal,
  type PolicyResource,
} from './policy-set.js';

export interface PolicyAuthorizerOptions {
  logger?: Logger | undefined;
  /** Share of allowed decisions logged (0..1, default 0.01); every denial is logged. */
  allowLogSampleRate?: number;
  /** The clock policies see as context.time (tests inject one). */
  now?: () => Date;
  random?: () => number;
}

/**
 * Evaluates policies for the proxy and the admin: keeps one compiled set per namespace content
 * (a changed namespace, e.g. after `namespace apply`, compiles a new set with an empty decision
 * cache), logs decisions (denials always, allows sampled; subject, action and resource only,
 * never token contents), and counts them per decision and policy.
 */
export class PolicyAuthorizer {
  private readonly sets = new Map<string, { fingerprint: string; set: CompiledPolicySet }>();
  private byMessage = new WeakMap<NamespaceRequest, CompiledPolicySet>();
  private global: NamedPolicy[] = [];
  private globalVersion = '';
  private decisions?: Counter;
  private latency?: Histogram;

  constructor(private readonly options: PolicyAuthorizerOptions = {}) {}

  /** Registers prism_policy_decisions_total and prism_policy_evaluation_seconds. */
  register(registry: Registry): void {
    this.decisions = new Counter({
      name: 'prism_policy_decisions_total',
      help: 'Authorization decisions by scope (namespace or control-plane), action, decision and deciding policy ("" for the default deny)',
      labelNames: ['scope', 'action', 'decision', 'policy'],
      registers: [registry],
    });
    this.latency = new Histogram({
      name: 'prism_policy_evaluation_seconds',
      help: 'Time to reach an authorization decision, cache hits included',
      labelNames: ['cached'],
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005],
      registers: [registry],
    });
  }

  /**
   * The admin's global policies, evaluated with every namespace's own. Their ids get the prefix
   * `global.` so they cannot clash with a namespace's; a change recompiles every namespace's set.
   */
  setGlobalPolicies(policies: readonly NamedPolicy[]): void {
    const version = JSON.stringify(policies.map((p) => [p.id, p.text]));
    if (version === this.globalVersion) return;
    this.global = policies.map((p) => ({ ...p, id: `global.${p.id}` }));
    this.globalVersion = version;
    this.byMessage = new WeakMap();
    this.sets.clear();
  }

  now(): Date {
    return this.options.now?.() ?? new Date();
  }

  /**
   * The compiled set a namespace is evaluated with, rebuilt when the namespace changes. The proxy
   * keeps one message per served version, so the message itself is the fast key; its content
   * hash only decides whether a new message (a re-apply) changed anything.
   */
  namespaceSet(ns: NamespaceRequest): CompiledPolicySet {
    const seen = this.byMessage.get(ns);
    if (seen) return seen;
    const set = this.compile(ns);
    this.byMessage.set(ns, set);
    return set;
  }

  private compile(ns: NamespaceRequest): CompiledPolicySet {
    const fingerprint = createHash('sha256').update(toJsonString(NamespaceRequestSchema, ns)).digest('hex');
    const known = this.sets.get(ns.namespace);
    if (known?.fingerprint === fingerprint) return known.set;
    let set: CompiledPolicySet;
    try {
      set = new CompiledPolicySet([...namespacePolicies(ns), ...this.global]);
    } catch (err) {
      throw new PrismError(
        'E_PERMISSION_DENIED',
        `the policies of namespace '${ns.namespace}' cannot be evaluated: ${(err as Error).message}`,
        { hint: 'run `prismctl namespace validate` on it and apply a fixed version', cause: err },
      );
    }
    this.sets.set(ns.namespace, { fingerprint, set });
    return set;
  }

  /**
   * Decides every resource of one call; all must be allowed. Throws E_PERMISSION_DENIED naming
   * the first denied resource and the policies that forbade it, if any.
   */
  authorize(
    set: CompiledPolicySet,
    scope: string,
    action: ActionSpec,
    principal: PolicyPrincipal,
    resources: readonly PolicyResource[],
    call: PolicyCallContext,
  ): void {
    for (const resource of resources) {
      const decision = this.decide(set, scope, action, principal, resource, call);
      if (decision.allowed) continue;
      const what =
        resource.key !== undefined
          ? ` key '${resource.key}'`
          : resource.topic !== undefined
            ? ` topic '${resource.topic}'`
            : '';
      const by =
        decision.policies.length > 0
          ? `forbidden by ${decision.policies.join(', ')}`
          : 'no policy permits it';
      throw new PrismError(
        'E_PERMISSION_DENIED',
        `${principal.subject} may not ${action.id}${what} in ${scope === 'control-plane' ? 'the control plane' : `namespace '${scope}'`} (${by})`,
        { hint: `ask an owner for ${action.group} access, or see \`prismctl policy test\`` },
      );
    }
  }

  decide(
    set: CompiledPolicySet,
    scope: string,
    action: ActionSpec,
    principal: PolicyPrincipal,
    resource: PolicyResource,
    call: PolicyCallContext,
  ): PolicyDecision {
    const started = process.hrtime.bigint();
    const decision = set.evaluate(action, principal, resource, call);
    this.latency?.observe(
      { cached: String(decision.cached) },
      Number(process.hrtime.bigint() - started) / 1e9,
    );
    const verdict = decision.allowed ? 'allow' : 'deny';
    if (this.decisions) {
      if (decision.policies.length === 0)
        this.decisions.inc({ scope, action: action.id, decision: verdict, policy: '' });
      for (const policy of decision.policies)
        this.decisions.inc({ scope, action: action.id, decision: verdict, policy });
    }
    const logger = this.options.logger;
    const rate = this.options.allowLogSampleRate ?? 0.01;
    if (logger && (!decision.allowed || (rate > 0 && (this.options.random ?? Math.random)() < rate))) {
      logger.info(
        {
          decision: verdict,
          scope,
          action: action.id,
          subject: principal.subject,
          resource: {
            type: resource.kind,
            ...(resource.pattern ? { pattern: resource.pattern } : {}),
            ...(resource.key !== undefined ? { key: resource.key } : {}),
            ...(resource.topic !== undefined ? { topic: resource.topic } : {}),
          },
          policies: decision.policies,
          ...(decision.errors.length ? { policyErrors: decision.errors } : {}),
          policyVersion: set.version,
          cached: decision.cached,
          sampled: decision.allowed,
        },
        'policy decision',
      );
    }
    return decision;
  }

  /** A set for the control plane: its default policies and the operator's global ones. */
  static controlPlaneSet(policies: readonly NamedPolicy[]): CompiledPolicySet {
    return new CompiledPolicySet(policies);
  }
}

/** The client's IP address from a grpc-js peer string ("1.2.3.4:5", "[::1]:5", "ipv4:..."), if any. */
export function clientIpOf(peer: string | undefined): string | undefined {
  if (!peer) return undefined;
  const bare = peer.replace(/^ipv[46]:/, '');
  const host = bare.startsWith('[') ? bare.slice(1, bare.indexOf(']')) : bare.replace(/:\d+$/, '');
  const unmapped = host.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  return isIP(unmapped) ? unmapped : undefined;
}
