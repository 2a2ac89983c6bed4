/**
 * The owners/consumers rule as it was before Cedar policies (issue 21). Calls are now decided by
 * src/auth/policy/ with this rule's Cedar form, the default set; this function stays as the
 * reference that test/unit/auth/policy/default-equivalence.test.ts holds the default set to.
 */
import { Permission, type NamespaceRequest } from '../gen/prism/config/v1/namespace_pb.js';
import { PrismError } from '../errors.js';

export type Action = 'read' | 'write' | 'admin';

/** Who is asking, as far as authorization cares. */
export interface Principal {
  subject: string;
  email?: string;
  groups: readonly string[];
}

const READS = new Set([
  'Get',
  'Exists',
  'Scan',
  'GetTtl',
  'BatchGet',
  'Subscribe',
  'Acknowledge',
  'Consume',
  'Query',
  'Watch',
]);
const WRITES = new Set([
  'Set',
  'Delete',
  'Expire',
  'Persist',
  'BatchSet',
  'BatchDelete',
  'Publish',
  'PublishBatch',
  'PublishStream',
  'PublishUpload',
]);

const ACTION_OF_PERMISSION: Partial<Record<Permission, Action>> = {
  [Permission.READ]: 'read',
  [Permission.WRITE]: 'write',
  [Permission.ADMIN]: 'admin',
};

/** The action a data-plane method needs; an unknown method needs admin (deny by default). */
export function actionOf(method: string): Action {
  if (READS.has(method)) return 'read';
  if (WRITES.has(method)) return 'write';
  return 'admin';
}

/**
 * The actions a principal holds on a namespace (DESIGN §7): owners `{team: X}` and consumer
 * subjects `group:X` match members of group X, `user:<sub or email>` matches one person; owners
 * read, write and administer; consumers get the permissions listed. Without an `access` block,
 * only the owning `team` is admitted.
 */
export function grantedActions(namespace: NamespaceRequest, who: Principal): Set<Action> {
  const granted = new Set<Action>();
  const groups = new Set(who.groups);
  const owners = namespace.access ? namespace.access.owners.map((o) => o.team) : [namespace.team];
  if (owners.some((team) => team !== '' && groups.has(team))) return new Set(['read', 'write', 'admin']);
  for (const grant of namespace.access?.consumers ?? []) {
    if (!matches(grant.subject, who, groups)) continue;
    for (const permission of grant.permissions) {
      const action = ACTION_OF_PERMISSION[permission];
      if (action) granted.add(action);
    }
  }
  return granted;
}

function matches(subject: string, who: Principal, groups: Set<string>): boolean {
  const colon = subject.indexOf(':');
  if (colon < 0) return false;
  const kind = subject.slice(0, colon);
  const name = subject.slice(colon + 1);
  if (name === '') return false;
  if (kind === 'group') return groups.has(name);
  if (kind === 'user') return name === who.subject || (who.email !== undefined && name === who.email);
  return false;
}

/** Throws E_PERMISSION_DENIED unless the principal may call `method` on the namespace. */
export function authorize(namespace: NamespaceRequest, who: Principal, method: string): void {
  const action = actionOf(method);
  if (grantedActions(namespace, who).has(action)) return;
  throw new PrismError(
    'E_PERMISSION_DENIED',
    `${who.subject} may not ${action} namespace '${namespace.namespace}' (${method})`,
    { hint: `ask an owner of '${namespace.namespace}' for ${action} access` },
  );
}
