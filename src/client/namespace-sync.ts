import { ApplyOutcome, type ApplyNamespaceResponse } from '../gen/prism/admin/v1/control_plane_pb.js';
import { renderCanonical } from '../config/canonical.js';
import { validatePaths, type ValidationReport } from '../config/validate.js';
import { unifiedDiff } from '../config/diff.js';
import { PrismError } from '../errors.js';
import type { AdminClient } from './admin-client.js';

export interface ApplyResult {
  namespace: string;
  source: string;
  outcome: 'created' | 'updated' | 'unchanged';
  version: number;
  partition: number;
  ownerProxy: string;
  dryRun: boolean;
  slots: Array<{
    pattern: string;
    type: string;
    slot: string;
    backend: string;
    endpoint: string;
    credentialRef: string;
  }>;
}

const OUTCOME: Record<ApplyOutcome, ApplyResult['outcome']> = {
  [ApplyOutcome.UNSPECIFIED]: 'unchanged',
  [ApplyOutcome.CREATED]: 'created',
  [ApplyOutcome.UPDATED]: 'updated',
  [ApplyOutcome.UNCHANGED]: 'unchanged',
};

/** Thrown when local files are invalid: nothing is sent to the control plane. */
export class LocalValidationError extends PrismError {
  constructor(readonly report: ValidationReport) {
    super(
      'E_INVALID_NAMESPACE',
      `${report.errors} error${report.errors === 1 ? '' : 's'} in the namespace files; nothing was applied`,
    );
  }
}

/** Validates files locally, then applies each namespace over one connection, in file order. */
export async function applyPaths(
  client: AdminClient,
  paths: readonly string[],
  options: { dryRun: boolean },
): Promise<ApplyResult[]> {
  const { report, loaded } = await validatePaths(paths);
  if (report.errors > 0) throw new LocalValidationError(report);
  const results: ApplyResult[] = [];
  for (const { request, document } of loaded) {
    const response = await client.apply({
      namespace: request,
      dryRun: options.dryRun,
      source: document.file,
    });
    results.push(toResult(request.namespace, document.file, response));
  }
  return results;
}

export interface DiffResult {
  namespace: string;
  source: string;
  /** Unified diff server → local; "" when equal. */
  diff: string;
  exists: boolean;
}

/** Canonical YAML of the stored namespace against the local file, for every namespace given. */
export async function diffPaths(client: AdminClient, paths: readonly string[]): Promise<DiffResult[]> {
  const { report, loaded } = await validatePaths(paths);
  if (report.errors > 0) throw new LocalValidationError(report);
  const results: DiffResult[] = [];
  for (const { request, document } of loaded) {
    const local = renderCanonical([request], 'yaml');
    let remote = '';
    let exists = true;
    try {
      remote = renderCanonical([(await client.export(request.namespace)).namespace!], 'yaml');
    } catch (err) {
      if ((err as PrismError).code !== 'E_NOT_FOUND') throw err;
      exists = false;
    }
    results.push({
      namespace: request.namespace,
      source: document.file,
      exists,
      diff: unifiedDiff(request.namespace, remote, local, ['server', 'local']),
    });
  }
  return results;
}

function toResult(name: string, source: string, response: ApplyNamespaceResponse): ApplyResult {
  const a = response.assignment!;
  return {
    namespace: name,
    source,
    outcome: OUTCOME[response.outcome],
    version: Number(a.version),
    partition: a.partition,
    ownerProxy: a.ownerProxy,
    dryRun: response.dryRun,
    slots: a.patterns.flatMap((p) =>
      p.slots.map((s) => ({
        pattern: p.name,
        type: p.type,
        slot: s.slot,
        backend: s.backend,
        endpoint: s.endpoint,
        credentialRef: s.credentialRef,
      })),
    ),
  };
}
