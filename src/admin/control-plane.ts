import { create, fromJson, toJson } from '@bufbuild/protobuf';
import { createHash } from 'node:crypto';
import {
  ApplyNamespaceResponseSchema,
  ApplyOutcome,
  AuditEntrySchema,
  GlobalPolicySchema,
  HeartbeatResponseSchema,
  NamespaceRouteSchema,
  NamespaceSummarySchema,
  OwnedNamespaceSchema,
  type ApplyNamespaceRequest,
  type ApplyNamespaceResponse,
  type AuditEntry,
  type HeartbeatResponse,
  type NamespaceRoute,
  type NamespaceSummary,
  type OwnedNamespace,
} from '../gen/prism/admin/v1/control_plane_pb.js';
import {
  DiagnosticSchema,
  Severity,
  type Diagnostic as WireDiagnostic,
} from '../gen/prism/common/v1/diagnostic_pb.js';
import {
  NamespaceRequestSchema,
  NamespaceResponseSchema,
  type NamespaceRequest,
  type NamespaceResponse,
} from '../gen/prism/config/v1/namespace_pb.js';
import { canonicalNamespace, renderCanonical } from '../config/canonical.js';
import type { Diagnostic } from '../config/diagnostics.js';
import { validateMessage } from '../config/validate.js';
import type { NamedPolicy } from '../auth/policy/defaults.js';
import { PrismError } from '../errors.js';
import { assignNamespace } from './assign.js';
import type { BackendCatalog } from './catalog.js';
import { unifiedDiff } from '../config/diff.js';
import { ownerOf } from './partition.js';
import {
  VersionConflictError,
  type NamespaceStore,
  type ProxyRecord,
  type StoredNamespace,
} from './store.js';

export interface ControlPlaneOptions {
  store: NamespaceStore;
  catalog: BackendCatalog;
  heartbeatIntervalMs?: number;
  /** A proxy that misses this many heartbeat intervals stops owning partitions. */
  missedHeartbeats?: number;
  now?: () => number;
  /** Global Cedar policies sent to proxies with their namespaces (docs/policies.md §9). */
  globalPolicies?: readonly NamedPolicy[];
}

/** Carries the structured diagnostics of a rejected namespace to the transport layer. */
export class InvalidNamespaceError extends PrismError {
  constructor(
    message: string,
    readonly diagnostics: Diagnostic[],
  ) {
    super('E_INVALID_NAMESPACE', message, { hint: 'run `prismctl namespace validate` on the file' });
  }
}

/**
 * The control-plane pipeline (DESIGN.md §5), independent of the transport: validate → select
 * patterns and assign backends → partition and owner → persist with an audit entry.
 */
export class ControlPlane {
  private readonly store: NamespaceStore;
  private readonly catalog: BackendCatalog;
  readonly heartbeatIntervalMs: number;
  readonly missedHeartbeats: number;
  private readonly liveWindowMs: number;
  private readonly now: () => number;
  private readonly globalPolicies: readonly NamedPolicy[];

  constructor(options: ControlPlaneOptions) {
    this.store = options.store;
    this.catalog = options.catalog;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 2000;
    this.missedHeartbeats = options.missedHeartbeats ?? 3;
    this.liveWindowMs = this.heartbeatIntervalMs * this.missedHeartbeats;
    this.now = options.now ?? Date.now;
    this.globalPolicies = options.globalPolicies ?? [];
  }

  async apply(request: ApplyNamespaceRequest, principal: string): Promise<ApplyNamespaceResponse> {
    if (!request.namespace) throw new PrismError('E_USAGE', 'ApplyNamespace needs a namespace');
    const source = request.source || '<request>';
    const { report, loaded } = validateMessage(request.namespace, source);
    if (report.errors > 0 || !loaded[0]) {
      throw new InvalidNamespaceError(
        `namespace '${request.namespace.namespace}' is invalid: ${report.errors} error${report.errors === 1 ? '' : 's'}`,
        report.diagnostics.filter((d) => d.severity === 'error'),
      );
    }
    const declaration = canonicalNamespace(loaded[0].request);
    const name = declaration.namespace;
    const yaml = renderCanonical([declaration], 'yaml');
    const contentHash = createHash('sha256').update(yaml).digest('hex');
    const existing = await this.store.get(name);
    const storedVersion = existing?.version ?? 0;
    if (request.expectedVersion !== undefined && Number(request.expectedVersion) !== storedVersion) {
      throw new VersionConflictError(
        name,
        Number(request.expectedVersion),
        storedVersion,
        existing?.updatedBy,
      );
    }
    const warnings = report.diagnostics.filter((d) => d.severity === 'warning').map(toWireDiagnostic);
    const live = await this.liveProxyIds();

    if (existing && existing.contentHash === contentHash) {
      return create(ApplyNamespaceResponseSchema, {
        outcome: ApplyOutcome.UNCHANGED,
        assignment: this.withOwner(existing, live),
        warnings,
        dryRun: request.dryRun,
      });
    }

    const assignment = assignNamespace(declaration, this.catalog);
    const version = storedVersion + 1;
    const at = this.now();
    assignment.version = BigInt(version);
    assignment.updatedAtMs = BigInt(at);
    assignment.ownerProxy = ownerOf(assignment.partition, live) ?? '';
    const outcome = existing ? ApplyOutcome.UPDATED : ApplyOutcome.CREATED;
    if (!request.dryRun) {
      const before = existing ? renderCanonical([decodeDeclaration(existing)], 'yaml') : '';
      await this.store.put(
        {
          name,
          team: declaration.team,
          version,
          declaration: toJson(NamespaceRequestSchema, declaration, { useProtoFieldName: true }),
          assignment: toJson(NamespaceResponseSchema, assignment, { useProtoFieldName: true }),
          contentHash,
          updatedAtMs: at,
          updatedBy: principal,
        },
        storedVersion,
        {
          namespace: name,
          action: existing ? 'update' : 'create',
          principal,
          atMs: at,
          versionBefore: storedVersion,
          versionAfter: version,
          diff: unifiedDiff(name, before, yaml),
          source,
        },
      );
    }
    return create(ApplyNamespaceResponseSchema, { outcome, assignment, warnings, dryRun: request.dryRun });
  }

  async get(name: string): Promise<{ namespace: NamespaceRequest; assignment: NamespaceResponse }> {
    const stored = await this.require(name);
    return {
      namespace: decodeDeclaration(stored),
      assignment: this.withOwner(stored, await this.liveProxyIds()),
    };
  }

  async list(): Promise<NamespaceSummary[]> {
    const live = await this.liveProxyIds();
    return (await this.store.list()).map((stored) => {
      const assignment = this.withOwner(stored, live);
      return create(NamespaceSummarySchema, {
        name: stored.name,
        team: stored.team,
        version: BigInt(stored.version),
        partition: assignment.partition,
        ownerProxy: assignment.ownerProxy,
        updatedAtMs: BigInt(stored.updatedAtMs),
        patternTypes: [...new Set(assignment.patterns.map((p) => p.type))],
      });
    });
  }

  async delete(name: string, expectedVersion: number | undefined, principal: string): Promise<number> {
    const stored = await this.require(name);
    if (expectedVersion !== undefined && expectedVersion !== stored.version) {
      throw new VersionConflictError(name, expectedVersion, stored.version, stored.updatedBy);
    }
    const before = renderCanonical([decodeDeclaration(stored)], 'yaml');
    await this.store.remove(name, stored.version, {
      namespace: name,
      action: 'delete',
      principal,
      atMs: this.now(),
      versionBefore: stored.version,
      versionAfter: 0,
      diff: unifiedDiff(name, before, ''),
      source: '',
    });
    return stored.version;
  }

  async export(name: string): Promise<NamespaceRequest> {
    return decodeDeclaration(await this.require(name));
  }

  async history(name: string): Promise<AuditEntry[]> {
    const entries = await this.store.history(name);
    if (entries.length === 0) throw new PrismError('E_NOT_FOUND', `namespace '${name}' has no history`);
    return entries.map((e) =>
      create(AuditEntrySchema, {
        id: BigInt(e.id),
        namespace: e.namespace,
        action: e.action,
        principal: e.principal,
        atMs: BigInt(e.atMs),
        versionBefore: BigInt(e.versionBefore),
        versionAfter: BigInt(e.versionAfter),
        diff: e.diff,
        source: e.source,
      }),
    );
  }

  async registerProxy(proxyId: string, address: string, version: string): Promise<void> {
    if (!proxyId) throw new PrismError('E_USAGE', 'RegisterProxy needs a proxy_id');
    await this.store.upsertProxy({ proxyId, address, version, lastHeartbeatMs: this.now() });
  }

  /**
   * Keeps a proxy live (or, `leaving`, takes it out of the live set), and answers with what it
   * owns and the route table, each only when it changed since the fingerprint the proxy knows.
   */
  async heartbeat(
    proxyId: string,
    knownFingerprint: string,
    options: { knownRoutesFingerprint?: string; leaving?: boolean } = {},
  ): Promise<HeartbeatResponse> {
    const proxies = await this.store.liveProxies(0);
    const proxy = proxies.find((p) => p.proxyId === proxyId);
    if (!proxy)
      throw new PrismError('E_NOT_FOUND', `proxy '${proxyId}' is not registered`, {
        hint: 'call RegisterProxy first',
      });
    const beat = { ...proxy, lastHeartbeatMs: options.leaving ? 0 : this.now() };
    await this.store.upsertProxy(beat);
    const since = this.now() - this.liveWindowMs;
    const live = proxies
      .map((p) => (p.proxyId === proxyId ? beat : p))
      .filter((p) => p.lastHeartbeatMs >= since);
    const liveIds = live.map((p) => p.proxyId);
    const addresses = new Map(live.map((p) => [p.proxyId, p.address]));
    const owned: OwnedNamespace[] = [];
    const routes: NamespaceRoute[] = [];
    for (const stored of await this.store.list()) {
      const assignment = this.withOwner(stored, liveIds);
      routes.push(
        create(NamespaceRouteSchema, {
          namespace: stored.name,
          partition: assignment.partition,
          ownerProxy: assignment.ownerProxy,
          ownerAddress: addresses.get(assignment.ownerProxy) ?? '',
          version: BigInt(stored.version),
        }),
      );
      if (assignment.ownerProxy === proxyId) {
        owned.push(create(OwnedNamespaceSchema, { namespace: decodeDeclaration(stored), assignment }));
      }
    }
    const policies = this.globalPolicies.map((p) =>
      create(GlobalPolicySchema, { id: p.id, source: p.source, line: p.line, cedar: p.text }),
    );
    const fingerprint = createHash('sha256')
      .update(owned.map((o) => `${o.namespace!.namespace}@${o.assignment!.version}`).join('\n'))
      .update(JSON.stringify(this.globalPolicies.map((p) => [p.id, p.text])))
      .digest('hex');
    const routesFingerprint = createHash('sha256')
      .update(routes.map((r) => `${r.namespace}@${r.version} ${r.ownerProxy} ${r.ownerAddress}`).join('\n'))
      .digest('hex');
    const changed = fingerprint !== knownFingerprint;
    const routesChanged = routesFingerprint !== options.knownRoutesFingerprint;
    return create(HeartbeatResponseSchema, {
      fingerprint,
      changed,
      namespaces: changed ? owned : [],
      policies: changed ? policies : [],
      routesFingerprint,
      routesChanged,
      routes: routesChanged ? routes : [],
    });
  }

  /** Every proxy that ever registered, and whether its heartbeat keeps it live (the console). */
  async proxies(): Promise<Array<ProxyRecord & { live: boolean }>> {
    const since = this.now() - this.liveWindowMs;
    return (await this.store.liveProxies(0)).map((p) => ({ ...p, live: p.lastHeartbeatMs >= since }));
  }

  private async liveProxyIds(): Promise<string[]> {
    return (await this.store.liveProxies(this.now() - this.liveWindowMs)).map((p) => p.proxyId);
  }

  private async require(name: string): Promise<StoredNamespace> {
    const stored = await this.store.get(name);
    if (!stored)
      throw new PrismError('E_NOT_FOUND', `namespace '${name}' does not exist`, {
        hint: 'see `prismctl namespace list`',
      });
    return stored;
  }

  private withOwner(stored: StoredNamespace, live: readonly string[]): NamespaceResponse {
    const assignment = fromJson(NamespaceResponseSchema, stored.assignment as never);
    assignment.ownerProxy = ownerOf(assignment.partition, live) ?? '';
    return assignment;
  }
}

function decodeDeclaration(stored: StoredNamespace): NamespaceRequest {
  return fromJson(NamespaceRequestSchema, stored.declaration as never);
}

export function toWireDiagnostic(d: Diagnostic): WireDiagnostic {
  return create(DiagnosticSchema, {
    severity: d.severity === 'error' ? Severity.ERROR : Severity.WARNING,
    rule: d.rule,
    message: d.message,
    file: d.file,
    line: d.line,
    column: d.column,
    path: d.path,
    hint: d.hint ?? '',
  });
}
