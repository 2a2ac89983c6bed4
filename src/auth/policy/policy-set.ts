import { createHash } from 'node:crypto';
import { PrismError } from '../../errors.js';
import { cedar, type CedarValueJson, type EntityJson } from './cedar.js';
import type { NamedPolicy } from './defaults.js';
import {
  CONTEXT_ATTRIBUTES,
  ENTITY,
  type ActionSpec,
  type ContextAttribute,
  type ResourceKind,
} from './model.js';

/** Who is asking, as policies see it: from a verified token, never the token itself. */
export interface PolicyPrincipal {
  subject: string;
  email?: string | undefined;
  tenant: string;
  groups: readonly string[];
  scopes: readonly string[];
  /** The token's string, number and boolean claims, as strings (Cedar entity tags). */
  claims: Readonly<Record<string, string>>;
  /** The token's iat, seconds since the epoch. */
  issuedAt?: number | undefined;
}

/** What a call touches. */
export interface PolicyResource {
  kind: ResourceKind;
  namespace: string;
  team?: string | undefined;
  pattern?: string | undefined;
  key?: string | undefined;
  topic?: string | undefined;
}

export interface PolicyCallContext {
  now: Date;
  clientIp?: string | undefined;
}

export interface PolicyDecision {
  allowed: boolean;
  /** Ids of the policies that decided: the permits that allowed, or the forbids that denied. */
  policies: string[];
  /** Policies that failed to evaluate (they are skipped, as Cedar does). */
  errors: string[];
  cached: boolean;
}

/** What the policies read, so that requests carry only that and decisions are cached soundly. */
export interface PolicyReads {
  /** Context attributes some policy reads. */
  context: Set<ContextAttribute>;
  /** Some policy reads the resource beyond its type, namespace and pattern (e.g. its key). */
  resourceDetail: boolean;
  /** Some policy reads the principal's claims (entity tags). */
  claims: boolean;
  /**
   * Every attribute name some policy reads (`x.name`, `x has name`). Entities carry only these:
   * an attribute no policy names cannot change a decision, and each one costs time in the engine.
   */
  attributes: Set<string>;
}

const CACHE_LIMIT = 10_000;

/**
 * A compiled set of policies: parsed once into the Cedar engine, evaluated per call with the
 * entities Prism builds for it. Decisions are cached per (principal, action, resource shape, the
 * context values policies read) unless a policy reads `context.time`; the set's version is its
 * content hash, so a changed set is a new object with an empty cache.
 */
export class CompiledPolicySet {
  readonly version: string;
  readonly policies: ReadonlyMap<string, NamedPolicy>;
  readonly reads: PolicyReads;
  private readonly cache = new Map<string, PolicyDecision>();

  constructor(policies: readonly NamedPolicy[]) {
    const byId = new Map<string, NamedPolicy>();
    for (const p of policies) {
      if (byId.has(p.id))
        throw new PrismError('E_INVALID_NAMESPACE', `two policies have the id '${p.id}'`, {
          hint: 'give each @id annotation a unique value',
        });
      byId.set(p.id, p);
    }
    this.policies = byId;
    this.version = createHash('sha256')
      .update(JSON.stringify(policies.map((p) => [p.id, p.text])))
      .digest('hex')
      .slice(0, 16);
    const engine = cedar();
    const parsed = engine.preparsePolicySet(this.version, {
      staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])),
    });
    if (parsed.type === 'failure')
      throw new PrismError(
        'E_INVALID_NAMESPACE',
        `policies do not parse: ${parsed.errors[0]?.message ?? ''}`,
      );
    this.reads = analyse(policies);
  }

  /**
   * Sound to cache unless a policy reads `context.time`, which changes every millisecond; the
   * other context attributes a policy reads are part of the cache key (hour, weekday, address,
   * token age in whole seconds), so a cached decision is one Cedar would make again.
   */
  get cacheable(): boolean {
    return !this.reads.context.has('time');
  }

  evaluate(
    action: ActionSpec,
    principal: PolicyPrincipal,
    resource: PolicyResource,
    context: PolicyCallContext,
  ): PolicyDecision {
    const key = this.cacheable ? this.cacheKey(action, principal, resource, context) : undefined;
    if (key !== undefined) {
      const hit = this.cache.get(key);
      if (hit) return { ...hit, cached: true };
    }
    const decision = this.decide(action, principal, resource, context);
    if (key !== undefined) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, decision);
    }
    return decision;
  }

  private cacheKey(
    action: ActionSpec,
    p: PolicyPrincipal,
    r: PolicyResource,
    call: PolicyCallContext,
  ): string {
    return JSON.stringify([
      this.reads.context.size > 0 ? this.contextOf(p, call) : 0,
      action.id,
      p.subject,
      p.email ?? '',
      p.tenant,
      [...p.groups].sort(),
      [...p.scopes].sort(),
      this.reads.claims ? Object.entries(p.claims).sort() : 0,
      r.kind,
      r.namespace,
      r.team ?? null,
      r.pattern ?? '',
      this.reads.resourceDetail ? (r.key ?? r.topic ?? '') : 0,
    ]);
  }

  private decide(
    action: ActionSpec,
    principal: PolicyPrincipal,
    resource: PolicyResource,
    context: PolicyCallContext,
  ): PolicyDecision {
    const resourceUid = resourceUidOf(resource);
    const answer = cedar().statefulIsAuthorized({
      principal: { type: ENTITY.user, id: principal.subject },
      action: { type: ENTITY.action, id: action.id },
      resource: resourceUid,
      context: this.contextOf(principal, context),
      preparsedPolicySetId: this.version,
      // No schema here: with one, Cedar demands every context attribute, and the context carries
      // only what the policies read. The action's group comes as an entity instead.
      entities: [actionEntity(action), ...entitiesOf(principal, resource, resourceUid, this.reads)],
    });
    if (answer.type === 'failure')
      throw new PrismError(
        'E_INTERNAL',
        `policy evaluation failed: ${answer.errors.map((e) => e.message).join('; ')}`,
      );
    const { decision, diagnostics } = answer.response;
    return {
      allowed: decision === 'allow',
      policies: [...diagnostics.reason].sort(),
      errors: diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
      cached: false,
    };
  }

  private contextOf(principal: PolicyPrincipal, call: PolicyCallContext): Record<string, CedarValueJson> {
    const reads = this.reads.context;
    const out: Record<string, CedarValueJson> = {};
    if (reads.has('time')) out.time = { __extn: { fn: 'datetime', arg: call.now.toISOString() } };
    if (reads.has('hour')) out.hour = call.now.getUTCHours();
    if (reads.has('day_of_week')) out.day_of_week = ((call.now.getUTCDay() + 6) % 7) + 1;
    if (reads.has('client_ip') && call.clientIp) out.client_ip = { __extn: { fn: 'ip', arg: call.clientIp } };
    if (reads.has('token_age_seconds') && principal.issuedAt !== undefined)
      out.token_age_seconds = Math.max(0, Math.floor(call.now.getTime() / 1000) - principal.issuedAt);
    return out;
  }
}

function actionEntity(action: ActionSpec): EntityJson {
  return {
    uid: { type: ENTITY.action, id: action.id },
    attrs: {},
    parents: [{ type: ENTITY.action, id: action.group }],
  };
}

function resourceUidOf(r: PolicyResource): { type: string; id: string } {
  switch (r.kind) {
    case 'ControlPlane':
      return { type: ENTITY.controlPlane, id: 'prism' };
    case 'Namespace':
      return { type: ENTITY.namespace, id: r.namespace };
    case 'Key':
      return { type: ENTITY.key, id: `${r.namespace}/${r.pattern ?? ''}/${r.key ?? ''}` };
    case 'Topic':
      return { type: ENTITY.topic, id: `${r.namespace}/${r.pattern ?? ''}/${r.topic ?? ''}` };
  }
}

function entitiesOf(
  p: PolicyPrincipal,
  r: PolicyResource,
  uid: { type: string; id: string },
  reads: PolicyReads,
): EntityJson[] {
  const only = (attrs: Record<string, CedarValueJson>) =>
    Object.fromEntries(Object.entries(attrs).filter(([name]) => reads.attributes.has(name)));
  const entities: EntityJson[] = [
    {
      uid: { type: ENTITY.user, id: p.subject },
      attrs: only({
        subject: p.subject,
        email: p.email ?? '',
        tenant: p.tenant,
        groups: [...p.groups],
        scopes: [...p.scopes],
      }),
      parents: p.groups.map((g) => ({ type: ENTITY.group, id: g })),
      ...(reads.claims ? { tags: { ...p.claims } } : {}),
    },
  ];
  if (r.kind === 'ControlPlane') return entities;
  // The control plane entity has no attributes: naming it as a parent is enough for `in`.
  const namespaceUid = { type: ENTITY.namespace, id: r.namespace };
  entities.push({
    uid: namespaceUid,
    attrs: only({ name: r.namespace, ...(r.team !== undefined ? { team: r.team } : {}) }),
    parents: [{ type: ENTITY.controlPlane, id: 'prism' }],
  });
  if (r.kind === 'Key')
    entities.push({
      uid,
      attrs: only({ namespace: r.namespace, pattern: r.pattern ?? '', key: r.key ?? '' }),
      parents: [namespaceUid],
    });
  if (r.kind === 'Topic')
    entities.push({
      uid,
      attrs: only({ namespace: r.namespace, pattern: r.pattern ?? '', topic: r.topic ?? '' }),
      parents: [namespaceUid],
    });
  return entities;
}

/** Walks each policy's JSON form for what it reads from the context, the resource and the tags. */
export function analyse(policies: readonly NamedPolicy[]): PolicyReads {
  const reads: PolicyReads = {
    context: new Set(),
    resourceDetail: false,
    claims: false,
    attributes: new Set(),
  };
  const all = Object.keys(CONTEXT_ATTRIBUTES) as ContextAttribute[];
  const engine = cedar();
  for (const policy of policies) {
    const json = engine.policyToJson(policy.text);
    if (json.type === 'failure') continue;
    if (json.json.resource.op === '==') reads.resourceDetail = true;
    const visit = (node: unknown, parentReadsAttr: boolean): void => {
      if (Array.isArray(node)) {
        node.forEach((n) => visit(n, false));
        return;
      }
      if (node === null || typeof node !== 'object') return;
      const obj = node as Record<string, unknown>;
      if ('getTag' in obj || 'hasTag' in obj) reads.claims = true;
      for (const op of ['.', 'has'] as const) {
        const access = obj[op] as { left?: { Var?: string }; attr?: string | string[] } | undefined;
        if (access?.attr !== undefined)
          for (const name of Array.isArray(access.attr) ? access.attr : [access.attr])
            reads.attributes.add(name);
        if (access?.left?.Var === 'context') {
          const attr = Array.isArray(access.attr) ? access.attr[0] : access.attr;
          if (attr && (all as string[]).includes(attr)) reads.context.add(attr as ContextAttribute);
          return;
        }
      }
      if (obj.Var === 'context' && !parentReadsAttr) all.forEach((a) => reads.context.add(a));
      if (obj.Var === 'resource') reads.resourceDetail = true;
      for (const value of Object.values(obj)) visit(value, false);
    };
    visit(json.json.conditions, false);
  }
  return reads;
}
