/**
 * The entity model Prism evaluates Cedar policies against (docs/policies.md): one principal type,
 * one action per pattern method grouped under the permissions of `access` (read, write, admin),
 * one resource type per kind of thing a call touches, and one context shape. The Cedar schema is
 * generated from these tables, so the validator, the authorizer and the docs read the same model.
 */

export const CEDAR_NAMESPACE = 'Prism';

export const ENTITY = {
  user: `${CEDAR_NAMESPACE}::User`,
  group: `${CEDAR_NAMESPACE}::Group`,
  namespace: `${CEDAR_NAMESPACE}::Namespace`,
  key: `${CEDAR_NAMESPACE}::Key`,
  topic: `${CEDAR_NAMESPACE}::Topic`,
  controlPlane: `${CEDAR_NAMESPACE}::ControlPlane`,
  action: `${CEDAR_NAMESPACE}::Action`,
} as const;

export type ResourceKind = 'Key' | 'Topic' | 'Namespace' | 'ControlPlane';

/** The data-plane permission groups, named as in `access.consumers[].permissions`. */
export type DataGroup = 'read' | 'write' | 'admin';
/** The control-plane groups, granted today by the admin's group and scope options. */
export type ControlGroup = 'control.read' | 'control.write' | 'control.proxy';

export interface ActionSpec {
  /** Cedar action id, e.g. `keyvalue.get`. */
  readonly id: string;
  readonly group: DataGroup | ControlGroup;
  readonly resource: ResourceKind;
  readonly description: string;
}

/** Data-plane actions, by gRPC method. Batch methods evaluate their action once per key or message. */
export const DATA_ACTIONS: Readonly<Record<string, ActionSpec>> = {
  Get: { id: 'keyvalue.get', group: 'read', resource: 'Key', description: 'Get, and each key of BatchGet' },
  Exists: { id: 'keyvalue.exists', group: 'read', resource: 'Key', description: 'Exists' },
  Scan: {
    id: 'keyvalue.scan',
    group: 'read',
    resource: 'Key',
    description: 'Scan; the resource key is the scanned prefix',
  },
  GetTtl: { id: 'keyvalue.ttl', group: 'read', resource: 'Key', description: 'GetTtl' },
  Set: { id: 'keyvalue.set', group: 'write', resource: 'Key', description: 'Set, and each item of BatchSet' },
  Delete: {
    id: 'keyvalue.delete',
    group: 'write',
    resource: 'Key',
    description: 'Delete, and each key of BatchDelete',
  },
  Expire: { id: 'keyvalue.expire', group: 'write', resource: 'Key', description: 'Expire' },
  Persist: { id: 'keyvalue.persist', group: 'write', resource: 'Key', description: 'Persist' },
  Publish: {
    id: 'producer.publish',
    group: 'write',
    resource: 'Topic',
    description: 'Publish, and each message of PublishBatch',
  },
  Subscribe: { id: 'consumer.subscribe', group: 'read', resource: 'Topic', description: 'Subscribe' },
  ListCallerSessions: {
    id: 'sessions.list',
    group: 'admin',
    resource: 'Namespace',
    description: 'ListCallerSessions',
  },
  RevokeCallerSession: {
    id: 'sessions.revoke',
    group: 'admin',
    resource: 'Namespace',
    description: 'RevokeCallerSession',
  },
};

/**
 * Mailbox actions, by gRPC method: its Get and Delete share their names with keyvalue's, so a
 * method is looked up here when the call is for a mailbox pattern. The resource is the topic the
 * call names (Query's topic filter), else the mailbox's `topic` setting.
 */
export const MAILBOX_ACTIONS: Readonly<Record<string, ActionSpec>> = {
  Query: { id: 'mailbox.query', group: 'read', resource: 'Topic', description: 'Mailbox Query' },
  Get: { id: 'mailbox.get', group: 'read', resource: 'Topic', description: 'Mailbox Get' },
  Watch: { id: 'mailbox.watch', group: 'read', resource: 'Topic', description: 'Mailbox Watch' },
  Delete: { id: 'mailbox.delete', group: 'write', resource: 'Topic', description: 'Mailbox Delete' },
};

const BATCH_OF: Readonly<Record<string, string>> = {
  BatchGet: 'Get',
  BatchSet: 'Set',
  BatchDelete: 'Delete',
  PublishBatch: 'Publish',
  PublishStream: 'Publish',
  PublishUpload: 'Publish',
  Consume: 'Subscribe',
};

/** A data-plane method with no action of its own: deny by default, so only `admin` holders pass. */
export const OTHER_DATA_ACTION: ActionSpec = {
  id: 'data.other',
  group: 'admin',
  resource: 'Namespace',
  description: 'any other data-plane method (needs admin, as before policies)',
};

export const CONTROL_ACTIONS: Readonly<Record<string, ActionSpec>> = {
  GetNamespace: {
    id: 'namespace.get',
    group: 'control.read',
    resource: 'Namespace',
    description: 'GetNamespace',
  },
  ExportNamespace: {
    id: 'namespace.export',
    group: 'control.read',
    resource: 'Namespace',
    description: 'ExportNamespace',
  },
  GetNamespaceHistory: {
    id: 'namespace.history',
    group: 'control.read',
    resource: 'Namespace',
    description: 'GetNamespaceHistory',
  },
  ListNamespaces: {
    id: 'namespace.list',
    group: 'control.read',
    resource: 'ControlPlane',
    description: 'ListNamespaces',
  },
  ApplyNamespace: {
    id: 'namespace.apply',
    group: 'control.write',
    resource: 'Namespace',
    description: 'ApplyNamespace (also dry runs)',
  },
  DeleteNamespace: {
    id: 'namespace.delete',
    group: 'control.write',
    resource: 'Namespace',
    description: 'DeleteNamespace',
  },
  // The schema registry's REST API (docs/schemas.md). Reads are granted on the whole control
  // plane; a change is decided on the subject's namespace (with its team), so a global policy can
  // let a team change only its own namespace's subjects.
  ReadSchemas: {
    id: 'schema.read',
    group: 'control.read',
    resource: 'ControlPlane',
    description: 'schema registry reads (GET and compatibility checks)',
  },
  WriteSchemas: {
    id: 'schema.write',
    group: 'control.write',
    resource: 'Namespace',
    description: 'schema registry changes (register, delete, compatibility modes) on the subject’s namespace',
  },
  RegisterProxy: {
    id: 'proxy.register',
    group: 'control.proxy',
    resource: 'ControlPlane',
    description: 'RegisterProxy',
  },
  Heartbeat: {
    id: 'proxy.heartbeat',
    group: 'control.proxy',
    resource: 'ControlPlane',
    description: 'Heartbeat',
  },
  GetLatestSchema: {
    id: 'proxy.schema',
    group: 'control.proxy',
    resource: 'ControlPlane',
    description: 'GetLatestSchema (the schema a producer with a schema setting enforces)',
  },
};

/** A control-plane method with no action of its own needs write, as before policies. */
export const OTHER_CONTROL_ACTION: ActionSpec = {
  id: 'control.other',
  group: 'control.write',
  resource: 'ControlPlane',
  description: 'any other control-plane method (needs write, as before policies)',
};

/**
 * The action a data-plane method is evaluated as (batch methods: the action of one item), for a
 * call to a pattern of `patternType` when the caller knows it.
 */
export function dataActionOf(method: string, patternType?: string): ActionSpec {
  if (patternType === 'mailbox') return MAILBOX_ACTIONS[method] ?? OTHER_DATA_ACTION;
  return DATA_ACTIONS[BATCH_OF[method] ?? method] ?? OTHER_DATA_ACTION;
}

export function controlActionOf(method: string): ActionSpec {
  return CONTROL_ACTIONS[method] ?? OTHER_CONTROL_ACTION;
}

export const ALL_ACTIONS: readonly ActionSpec[] = [
  ...Object.values(DATA_ACTIONS),
  ...Object.values(MAILBOX_ACTIONS),
  OTHER_DATA_ACTION,
  ...Object.values(CONTROL_ACTIONS),
  OTHER_CONTROL_ACTION,
];

export const GROUPS: readonly (DataGroup | ControlGroup)[] = [
  'read',
  'write',
  'admin',
  'control.read',
  'control.write',
  'control.proxy',
];

/** Context attributes, all required in the schema; the authorizer fills only those policies read. */
export const CONTEXT_ATTRIBUTES = {
  time: 'datetime',
  hour: 'Long',
  day_of_week: 'Long',
  client_ip: 'ipaddr',
  token_age_seconds: 'Long',
} as const;

export type ContextAttribute = keyof typeof CONTEXT_ATTRIBUTES;

let schemaText: string | undefined;

/** Prism's Cedar schema (human-readable syntax). */
export function prismCedarSchema(): string {
  schemaText ??= renderSchema();
  return schemaText;
}

function renderSchema(): string {
  const q = JSON.stringify;
  const lines = [
    `namespace ${CEDAR_NAMESPACE} {`,
    '  type Context = {',
    '    time: datetime,',
    '    hour: Long,',
    '    day_of_week: Long,',
    '    client_ip?: ipaddr,',
    '    token_age_seconds?: Long,',
    '  };',
    '  entity Group;',
    '  entity User in [Group] {',
    '    subject: String,',
    '    email: String,',
    '    tenant: String,',
    '    groups: Set<String>,',
    '    scopes: Set<String>,',
    '  } tags String;',
    '  entity ControlPlane;',
    '  entity Namespace in [ControlPlane] { name: String, team?: String };',
    '  entity Key in [Namespace] { namespace: String, pattern: String, key: String };',
    '  entity Topic in [Namespace] { namespace: String, pattern: String, topic: String };',
    ...GROUPS.map((g) => `  action ${q(g)};`),
    ...ALL_ACTIONS.map(
      (a) =>
        `  action ${q(a.id)} in [${q(a.group)}] appliesTo { principal: [User], resource: [${a.resource}], context: Context };`,
    ),
    '}',
  ];
  return lines.join('\n') + '\n';
}
