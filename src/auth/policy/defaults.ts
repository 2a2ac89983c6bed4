import { Permission, type NamespaceRequest } from '../../gen/prism/config/v1/namespace_pb.js';
import { cedarString } from './cedar.js';
import { ENTITY, type DataGroup } from './model.js';

/** One Cedar policy with the id decisions report it by. */
export interface NamedPolicy {
  id: string;
  text: string;
  /** Where it was written: a policy file, `<file>#/access/policies/0` for inline text, or `default`. */
  source: string;
  /** 1-based line of the policy in its source; 0 for generated policies. */
  line: number;
}

const GROUP_OF_PERMISSION: Partial<Record<Permission, DataGroup>> = {
  [Permission.READ]: 'read',
  [Permission.WRITE]: 'write',
  [Permission.ADMIN]: 'admin',
};

const action = (group: string) => `${ENTITY.action}::${cedarString(group)}`;
const group = (name: string) => `${ENTITY.group}::${cedarString(name)}`;

/**
 * Today's `access` rules (DESIGN §7) as Cedar: owners `{team: X}` and consumer subjects `group:X`
 * match members of group X, `user:<sub or email>` matches one person; owners read, write and
 * administer, consumers get the permissions listed; without an `access` block only the owning
 * team is admitted. test/unit/policy-defaults.test.ts holds this to the rule it replaced.
 */
export function defaultNamespacePolicies(ns: NamespaceRequest): NamedPolicy[] {
  const out: NamedPolicy[] = [];
  const resource = `resource in ${ENTITY.namespace}::${cedarString(ns.namespace)}`;
  const owners = ns.access ? ns.access.owners.map((o) => o.team) : [ns.team];
  for (const team of new Set(owners)) {
    if (team === '') continue;
    out.push({
      id: `default.owner.${team}`,
      text: `permit (principal in ${group(team)}, action in [${action('read')}, ${action('write')}, ${action('admin')}], ${resource});`,
      source: 'default',
      line: 0,
    });
  }
  (ns.access?.consumers ?? []).forEach((grant, i) => {
    const groups = [
      ...new Set(grant.permissions.map((p) => GROUP_OF_PERMISSION[p]).filter((g) => g !== undefined)),
    ];
    if (groups.length === 0) return;
    const colon = grant.subject.indexOf(':');
    const kind = colon < 0 ? '' : grant.subject.slice(0, colon);
    const name = colon < 0 ? '' : grant.subject.slice(colon + 1);
    if (name === '') return;
    const actions = `action in [${groups.map(action).join(', ')}]`;
    let text: string;
    if (kind === 'group') text = `permit (principal in ${group(name)}, ${actions}, ${resource});`;
    else if (kind === 'user')
      text = `permit (principal, ${actions}, ${resource}) when { principal.subject == ${cedarString(name)} || principal.email == ${cedarString(name)} };`;
    else return;
    out.push({ id: `default.consumer.${i}`, text, source: 'default', line: 0 });
  });
  return out;
}

/** The admin's group and scope options, as `prismctl admin serve` takes them. */
export interface ControlPlaneGrants {
  adminGroups?: readonly string[];
  readerGroups?: readonly string[];
  proxyGroups?: readonly string[];
  scopeMapping?: boolean;
}

/**
 * The control plane's rules before policies, as Cedar: admin groups read and write, reader groups
 * read, proxy groups register proxies; with scope mapping, prism:read, prism:write (which implies
 * read) and prism:proxy grant the same.
 */
export function defaultControlPlanePolicies(options: ControlPlaneGrants): NamedPolicy[] {
  const out: NamedPolicy[] = [];
  const grant = (id: string, principal: string, groups: string[], when = '') =>
    out.push({
      id,
      text: `permit (${principal}, action in [${groups.map(action).join(', ')}], resource)${when};`,
      source: 'default',
      line: 0,
    });
  for (const g of new Set(options.adminGroups ?? []))
    grant(`default.admin-group.${g}`, `principal in ${group(g)}`, ['control.read', 'control.write']);
  for (const g of new Set(options.readerGroups ?? []))
    grant(`default.reader-group.${g}`, `principal in ${group(g)}`, ['control.read']);
  for (const g of new Set(options.proxyGroups ?? []))
    grant(`default.proxy-group.${g}`, `principal in ${group(g)}`, ['control.proxy']);
  if (options.scopeMapping) {
    const scope = (s: string) => `principal.scopes.contains(${cedarString(s)})`;
    grant(
      'default.scope.read',
      'principal',
      ['control.read'],
      ` when { ${scope('prism:read')} || ${scope('prism:write')} }`,
    );
    grant('default.scope.write', 'principal', ['control.write'], ` when { ${scope('prism:write')} }`);
    grant('default.scope.proxy', 'principal', ['control.proxy'], ` when { ${scope('prism:proxy')} }`);
  }
  return out;
}
