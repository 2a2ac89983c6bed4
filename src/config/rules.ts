import type { NamespaceRequest, Pattern } from '../gen/prism/config/v1/namespace_pb.js';
import { Delivery, Durability, Isolation } from '../gen/prism/config/v1/namespace_pb.js';
import type { Diagnostic, Severity } from './diagnostics.js';
import {
  BACKENDS,
  backendFitsSlot,
  describeNeeds,
  PATTERN_TYPES,
  PATTERNS,
  type BackendSpec,
  type PatternSpec,
  type SettingName,
} from './registry.js';
import { describe } from './schema-diagnostics.js';
import { didYouMean } from './suggest.js';
import { parseDuration, parseSize } from './units.js';
import {
  backendTakesNoCredentials,
  VAULT_DATABASE_REFERENCE,
  vaultBackendsText,
  vaultIssuesCredentials,
} from './vault-credentials.js';
import { diagnosticAt, type NamespaceDocument, type Path } from './yaml-loader.js';
import { effectiveIsolation, ISOLATABLE_TYPES, LAUNCHED_ONLY_TYPES, parseRemoteRunner } from './isolation.js';
import { customSettingProblems } from './external-patterns.js';

/**
 * Semantic rules of DESIGN.md §4 over one namespace. Each finding carries a stable rule id; the
 * ids are listed in docs/namespace-rules.md and each has a test that triggers it.
 */
export function checkRules(
  ns: NamespaceRequest,
  doc: NamespaceDocument,
  raw: Record<string, unknown>,
  backends: Readonly<Record<string, BackendSpec>> = BACKENDS,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report = (severity: Severity, rule: string, message: string, hint: string, at: Path, key = false) =>
    out.push(diagnosticAt(doc, severity, rule, message, hint, at, key));
  const error = (rule: string, message: string, hint: string, at: Path, key = false) =>
    report('error', rule, message, hint, at, key);

  const vaultEnabled = ns.auth?.vault?.enabled === true;
  const seenPatterns = new Map<string, number>();
  ns.patterns.forEach((pattern, i) => {
    const at: Path = ['patterns', i];
    if (pattern.name) {
      const first = seenPatterns.get(pattern.name);
      if (first !== undefined) {
        error(
          'E_PATTERN_DUPLICATE',
          `pattern name '${pattern.name}' is used twice`,
          `rename one; the first is patterns[${first}]`,
          [...at, 'name'],
        );
      } else seenPatterns.set(pattern.name, i);
    }
    if (!pattern.type) return; // reported by the schema as missing
    const spec = PATTERNS[pattern.type];
    if (!spec) {
      error(
        'E_PATTERN_TYPE',
        `unknown pattern type '${pattern.type}'`,
        didYouMean(pattern.type, PATTERN_TYPES),
        [...at, 'type'],
      );
      return;
    }
    checkPattern(
      pattern,
      spec,
      at,
      rawPattern(raw, i),
      vaultEnabled && spec.sessionAware,
      ns,
      report,
      backends,
    );
  });

  checkSessions(ns, vaultEnabled, error);
  checkAuth(ns, error);
  checkIsolation(ns, vaultEnabled, error);
  return out;
}

const MESSAGING = new Set(['producer', 'consumer', 'mailbox']);

/**
 * memstore keeps its topics in the memory of the process that runs the runner: messaging
 * patterns on memstore that isolation puts in different processes would share no message.
 */
function checkMemstoreSplit(
  ns: NamespaceRequest,
  error: (rule: string, message: string, hint: string, at: Path) => void,
): void {
  const placed = ns.patterns
    .map((pattern, i) => ({ pattern, i, isolation: effectiveIsolation(ns, pattern) }))
    .filter(
      ({ pattern }) =>
        MESSAGING.has(pattern.type) && Object.values(pattern.slots).some((b) => b.backend === 'memstore'),
    );
  const where = ({ pattern, isolation }: (typeof placed)[number]) =>
    isolation === 'pattern' || isolation === 'remote' ? `${isolation}:${pattern.name}` : isolation;
  if (new Set(placed.map(where)).size < 2) return;
  for (const p of placed) {
    if (p.isolation === 'none') continue;
    error(
      'E_ISOLATION_MEMSTORE',
      `pattern '${p.pattern.name}' (${p.pattern.type}) would run in a process of its own (isolation ${p.isolation}) with a memstore slot, so it would share no message with this namespace's other memstore messaging patterns`,
      'give these patterns the same isolation (namespace puts them in one process), or bind them to a networked backend',
      p.isolation === 'remote'
        ? ['patterns', p.i, 'remote_runner']
        : p.pattern.isolation !== Isolation.UNSPECIFIED
          ? ['patterns', p.i, 'isolation']
          : ['isolation'],
    );
  }
}

/**
 * A launched runner process (isolation namespace or pattern) serves keyvalue, producer and
 * consumer only, and takes no Vault credentials: the proxy holds the Vault sessions.
 */
function checkIsolation(
  ns: NamespaceRequest,
  vaultEnabled: boolean,
  error: (rule: string, message: string, hint: string, at: Path) => void,
): void {
  checkMemstoreSplit(ns, error);
  ns.patterns.forEach((pattern, i) => {
    const isolation = effectiveIsolation(ns, pattern);
    if (isolation === 'remote') return checkRemoteRunner(pattern, i, vaultEnabled, error);
    if (isolation === 'none' && LAUNCHED_ONLY_TYPES.has(pattern.type)) {
      error(
        'E_ISOLATION_EXTERNAL',
        `pattern '${pattern.name}' (${pattern.type}) comes from a pattern module, whose runners never run inside the proxy`,
        'remove `isolation: none` (it runs in a process of its own), or write `isolation: namespace`',
        ['patterns', i, 'isolation'],
      );
    }
    if (isolation === 'none') return;
    const own = pattern.isolation !== Isolation.UNSPECIFIED;
    const at: Path = own ? ['patterns', i, 'isolation'] : ['isolation'];
    const label = `pattern '${pattern.name}' (${pattern.type})`;
    if (!ISOLATABLE_TYPES.has(pattern.type)) {
      error(
        'E_ISOLATION_TYPE',
        `${label} cannot run in a launched runner process: only keyvalue, producer and consumer can`,
        'remove `isolation` from this pattern; it runs inside the proxy',
        at,
      );
      return;
    }
    const vaultSlot = Object.entries(pattern.slots).find(([, b]) => b.credentials.startsWith('vault://'));
    if (vaultEnabled || vaultSlot) {
      error(
        'E_ISOLATION_VAULT',
        `${label} has isolation ${isolation}, but its backend credentials come from Vault, whose sessions only the proxy holds`,
        'use `isolation: none` for this pattern, or ${ENV_VAR} credentials',
        at,
      );
    }
  });
}

/**
 * `remote_runner` (E_REMOTE_RUNNER): host:port of a runner process elsewhere, for a pattern whose
 * runner can run out of the proxy, without an `isolation` of its own (it runs in neither) and
 * without Vault credentials (only the proxy holds Vault sessions).
 */
function checkRemoteRunner(
  pattern: NamespaceRequest['patterns'][number],
  i: number,
  vaultEnabled: boolean,
  error: (rule: string, message: string, hint: string, at: Path) => void,
): void {
  const at: Path = ['patterns', i, 'remote_runner'];
  const label = `pattern '${pattern.name}' (${pattern.type})`;
  if (!parseRemoteRunner(pattern.remoteRunner))
    error(
      'E_REMOTE_RUNNER',
      `${label}: remote_runner '${pattern.remoteRunner}' is not host:port`,
      'write it as runners.internal:50100, 10.0.0.7:50100 or [fd00::7]:50100 (port 1-65535)',
      at,
    );
  if (!ISOLATABLE_TYPES.has(pattern.type) && !LAUNCHED_ONLY_TYPES.has(pattern.type))
    error(
      'E_REMOTE_RUNNER',
      `${label} cannot be served by a remote runner: only keyvalue, producer and consumer can`,
      'remove remote_runner from this pattern; it runs inside the proxy',
      at,
    );
  if (pattern.isolation !== Isolation.UNSPECIFIED)
    error(
      'E_REMOTE_RUNNER',
      `${label} names a remote_runner and an isolation: a remote runner runs neither in the proxy nor in a process it launches`,
      'remove `isolation` from this pattern',
      ['patterns', i, 'isolation'],
    );
  const vaultSlot = Object.values(pattern.slots).some((b) => b.credentials.startsWith('vault://'));
  if (vaultEnabled || vaultSlot)
    error(
      'E_REMOTE_RUNNER',
      `${label} names a remote_runner, but its backend credentials come from Vault, whose sessions only the proxy holds`,
      'remove remote_runner, or give the remote runner ${ENV_VAR} credentials',
      at,
    );
}

type Report = (
  severity: Severity,
  rule: string,
  message: string,
  hint: string,
  at: Path,
  key?: boolean,
) => void;

function checkPattern(
  pattern: Pattern,
  spec: PatternSpec,
  at: Path,
  raw: Record<string, unknown>,
  sessionAware: boolean,
  ns: NamespaceRequest,
  report: Report,
  backends: Readonly<Record<string, BackendSpec>>,
): void {
  const error = (rule: string, message: string, hint: string, path: Path, key = false) =>
    report('error', rule, message, hint, path, key);
  const label = `pattern '${pattern.name || describe(at)}' (${spec.type})`;
  const backendNames = Object.keys(backends);

  if (pattern.version && !spec.versions.includes(pattern.version)) {
    error(
      'E_PATTERN_VERSION',
      `${spec.type} has no version '${pattern.version}'`,
      `registered versions: ${spec.versions.join(', ')}`,
      [...at, 'version'],
    );
  }

  for (const [slotName, slotSpec] of Object.entries(spec.slots)) {
    if (slotSpec.required && !(slotName in pattern.slots)) {
      const fit = backendNames.filter((b) => backendFitsSlot(backends[b]!, slotSpec));
      error(
        'E_SLOT_UNBOUND',
        `${label} requires slot '${slotName}'`,
        `add \`slots: { ${slotName}: { backend: ${fit[0] ?? '...'} } }\``,
        'slots' in raw ? [...at, 'slots'] : at,
      );
    }
  }

  for (const [slotName, binding] of Object.entries(pattern.slots)) {
    const slotAt: Path = [...at, 'slots', slotName];
    const slotSpec = spec.slots[slotName];
    if (!slotSpec) {
      error(
        'E_SLOT_UNKNOWN',
        `${spec.type} has no slot '${slotName}'`,
        didYouMean(slotName, Object.keys(spec.slots)),
        slotAt,
        true,
      );
      continue;
    }
    if (binding.backend) {
      const backend = backends[binding.backend];
      if (!backend) {
        error(
          'E_BACKEND_UNKNOWN',
          `unknown backend '${binding.backend}'`,
          didYouMean(binding.backend, backendNames),
          [...slotAt, 'backend'],
        );
      } else if (!backendFitsSlot(backend, slotSpec)) {
        const fit = backendNames.filter((b) => backendFitsSlot(backends[b]!, slotSpec));
        error(
          'E_BACKEND_CAPABILITY',
          `backend '${backend.name}' cannot fill slot '${slotName}' of ${spec.type}: the slot needs ${describeNeeds(slotSpec)}, ${backend.name} implements ${backend.implements.join(', ')}`,
          `use one of: ${fit.join(', ')}`,
          [...slotAt, 'backend'],
        );
      } else if (
        (spec.type === 'consumer' || spec.type === 'mailbox') &&
        slotName === 'source' &&
        !backend.implements.includes('queue') &&
        ns.needs?.delivery !== Delivery.AT_MOST_ONCE
      ) {
        const atLeastOnce = backendNames.filter((b) => backends[b]!.implements.includes('queue'));
        error(
          'E_DELIVERY_AT_MOST_ONCE',
          `${label} would get at-most-once delivery: its source ${backend.name} offers only pubsub, so a message published while no member is subscribed is lost, nothing is redelivered after ack_timeout and every subscriber receives every message`,
          `bind the source to a backend with at-least-once delivery (${atLeastOnce.join(', ')}), or declare \`needs: { delivery: at-most-once }\``,
          [...slotAt, 'backend'],
        );
      } else if (!backend.durable && ns.needs?.durability === Durability.STRONG) {
        report(
          'warning',
          'E_NEEDS_DURABILITY',
          `needs.durability is strong but slot '${slotName}' uses ${backend.name}, which loses data on restart`,
          'bind a durable backend or relax needs.durability',
          [...slotAt, 'backend'],
        );
      }
    }
    if (binding.credentials) {
      const slot = { name: slotName, backend: backends[binding.backend] ? binding.backend : undefined };
      checkCredentials(binding.credentials, sessionAware, label, slot, [...slotAt, 'credentials'], report);
    }
  }

  const settings = (raw.settings ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(settings)) {
    if (!spec.settings.includes(key as SettingName)) {
      error(
        'E_SETTING_NOT_APPLICABLE',
        `setting '${key}' does not apply to ${spec.type}`,
        spec.settings.length
          ? `settings of ${spec.type}: ${spec.settings.join(', ')}`
          : `${spec.type} has no settings`,
        [...at, 'settings', key],
        true,
      );
    }
  }
  for (const required of spec.requiredSettings) {
    if (!(required in settings)) {
      error(
        'E_SETTING_REQUIRED',
        `${label} needs setting '${required}'`,
        `add \`settings: { ${required}: ... }\``,
        'settings' in raw ? [...at, 'settings'] : at,
      );
    }
  }
  const sizes: Array<[SettingName, string | undefined, string]> = [
    ['max_value_size', pattern.settings?.maxValueSize, '1MiB'],
    ['max_message_size', pattern.settings?.maxMessageSize, '256KiB'],
  ];
  for (const [name, value, example] of sizes) {
    if (value && parseSize(value) === 0) {
      error('E_SIZE', `${label} ${name} must be larger than 0`, `for example ${example}`, [
        ...at,
        'settings',
        name,
      ]);
    }
  }
  checkMessageSize(pattern, label, at, report, backends);
  for (const problem of customSettingProblems(spec.type, pattern.settings?.custom ?? {})) {
    const path: Path = [...at, 'settings', 'custom'];
    error('E_SETTING_CUSTOM', problem.message, problem.hint, problem.key ? [...path, problem.key] : path);
  }
  if (spec.settings.includes('claim_check')) checkClaimCheck(pattern, spec.type, label, at, report);
  if (spec.type === 'mailbox') checkMailbox(pattern, label, at, error);
  if (pattern.settings?.encryption && spec.settings.includes('encryption')) {
    checkEncryption(pattern, spec, label, at, ns, error);
  }
  if (pattern.settings?.schema && spec.settings.includes('schema'))
    checkSchemaSetting(pattern.settings.schema.subject, ns.namespace, label, at, error);
  if (
    pattern.settings?.deadLetterTopic &&
    spec.settings.includes('dead_letter_topic') &&
    !('dead-letter' in pattern.slots)
  ) {
    error(
      'E_SETTING_NEEDS_SLOT',
      `${label} sets dead_letter_topic but binds no 'dead-letter' slot to write failed messages to`,
      'add `slots: { dead-letter: { backend: kafka } }` or remove dead_letter_topic',
      [...at, 'settings', 'dead_letter_topic'],
      true,
    );
  }
  if (spec.type === 'producer' && 'state' in pattern.slots && !pattern.settings?.dedupWindow) {
    error(
      'E_SLOT_UNUSED',
      `${label} binds slot 'state' but sets no dedup_window: the producer keeps only deduplication state there, so the slot would do nothing`,
      'set `dedup_window` (for example 5m) or remove the state slot',
      [...at, 'slots', 'state'],
      true,
    );
  }
  if (
    pattern.settings?.dedupWindow &&
    spec.settings.includes('dedup_window') &&
    !('state' in pattern.slots) &&
    'state' in spec.slots
  ) {
    error(
      'E_SETTING_NEEDS_SLOT',
      `${label} sets dedup_window but binds no 'state' slot to remember message ids`,
      'add `slots: { state: { backend: redis } }` or remove dedup_window',
      [...at, 'settings', 'dedup_window'],
      true,
    );
  }
}

/**
 * A producer's max_message_size above its sink backend's limit promises payloads the backend
 * refuses: warned, since an operator may have raised the backend's limit.
 */
function checkMessageSize(
  pattern: Pattern,
  label: string,
  at: Path,
  report: Report,
  backends: Readonly<Record<string, BackendSpec>>,
): void {
  const text = pattern.settings?.maxMessageSize;
  const bytes = text ? parseSize(text) : undefined;
  const backendName = pattern.slots['sink']?.backend;
  const limit = backendName ? backends[backendName]?.messageLimit : undefined;
  if (bytes === undefined || !limit || bytes <= limit.bytes) return;
  // With a claim check, only payloads up to its threshold travel inline.
  const claim = pattern.settings?.claimCheck;
  if (claim !== undefined && (parseSize(claim.threshold || '512KiB') ?? Infinity) <= limit.bytes) return;
  report(
    'warning',
    'E_MESSAGE_SIZE_ABOVE_BACKEND',
    `${label} max_message_size ${text} is above ${backendName}'s limit of ${limit.text} (${limit.source}): a payload between the two is refused by ${backendName} with RESOURCE_EXHAUSTED`,
    `lower max_message_size to ${limit.text} or less, or keep it if your ${backendName} allows larger messages`,
    [...at, 'settings', 'max_message_size'],
  );
}

/**
 * Envelope encryption asks Vault's transit engine for every data key, with the pattern's service
 * identity: without the namespace's auth.vault there is no Vault to ask.
 */
function checkEncryption(
  pattern: Pattern,
  spec: PatternSpec,
  label: string,
  at: Path,
  ns: NamespaceRequest,
  error: (rule: string, message: string, hint: string, path: Path, key?: boolean) => void,
): void {
  const encryption = pattern.settings!.encryption!;
  const path: Path = [...at, 'settings', 'encryption'];
  if (ns.auth?.vault?.enabled !== true) {
    error(
      'E_ENCRYPTION_VAULT',
      `${label} sets encryption, which takes its data keys from Vault's transit engine, but the namespace does not enable auth.vault`,
      'enable `auth: { vault: { enabled: true, address: ..., role: ... } }`, or remove encryption',
      [...path, 'key'],
    );
  }
  const ttl = encryption.dataKeyTtl;
  if (ttl && parseDuration(ttl) === 0) {
    error(
      'E_ENCRYPTION_DATA_KEY_TTL',
      `${label} encryption.data_key_ttl must be longer than 0: no data key could be used`,
      'for example 5m (the default)',
      [...path, 'data_key_ttl'],
    );
  }
  if (encryption.dataKeyMaxMessages !== undefined && spec.type !== 'producer') {
    error(
      'E_ENCRYPTION_NOT_APPLICABLE',
      `${label} sets encryption.data_key_max_messages, which bounds the data keys a producer seals with; a ${spec.type} only unwraps`,
      'remove data_key_max_messages from the consumer',
      [...path, 'data_key_max_messages'],
      true,
    );
  }
}

/** A registry subject (src/admin/schemas/subject.ts): `<namespace>.<topic>-value|key`. */
const SUBJECT = /^([a-z][a-z0-9-]{1,62})\.(.+)-(key|value)$/;

/**
 * A producer's `schema.subject` names a value subject of its own namespace: payloads are message
 * values, and a namespace's producers follow its own contracts.
 */
function checkSchemaSetting(
  subject: string,
  namespace: string,
  label: string,
  at: Path,
  error: (rule: string, message: string, hint: string, path: Path, key?: boolean) => void,
): void {
  const path: Path = [...at, 'settings', 'schema', 'subject'];
  const example = `${namespace || 'orders'}.events-value`;
  if (subject === '') {
    error(
      'E_SCHEMA_SUBJECT',
      `${label} sets schema but no schema.subject`,
      `for example subject: ${example}`,
      [...at, 'settings', 'schema'],
    );
    return;
  }
  const match = SUBJECT.exec(subject);
  if (!match) {
    error(
      'E_SCHEMA_SUBJECT',
      `${label} schema.subject '${subject}' is not a registry subject <namespace>.<topic>-value`,
      `for example ${example}`,
      path,
    );
  } else if (match[1] !== namespace) {
    error(
      'E_SCHEMA_SUBJECT',
      `${label} schema.subject '${subject}' belongs to namespace '${match[1]}', not '${namespace}'`,
      `use a subject of this namespace, for example ${example}`,
      path,
    );
  } else if (match[3] === 'key') {
    error(
      'E_SCHEMA_SUBJECT',
      `${label} schema.subject '${subject}' is a key subject; the producer checks payloads, which are values`,
      `use ${match[1]}.${match[2]}-value`,
      path,
    );
  }
}

/**
 * claim_check and the objects slot go together (each alone does nothing); its sizes and durations
 * parse; on a consumer only the slot matters, so threshold, compression and ttl are warned about.
 */
function checkClaimCheck(pattern: Pattern, type: string, label: string, at: Path, report: Report): void {
  const claim = pattern.settings?.claimCheck;
  const settingAt: Path = [...at, 'settings', 'claim_check'];
  if (claim === undefined) {
    if ('objects' in pattern.slots) {
      report(
        'error',
        'E_CLAIM_CHECK_SLOT_UNUSED',
        `${label} binds slot 'objects' but sets no claim_check: nothing would be stored there`,
        'set `claim_check: { threshold: 1MiB }` or remove the objects slot',
        [...at, 'slots', 'objects'],
        true,
      );
    }
    return;
  }
  if (!('objects' in pattern.slots)) {
    report(
      'error',
      'E_CLAIM_CHECK_NO_STORE',
      `${label} sets claim_check but binds no 'objects' slot to keep large payloads in`,
      'add `slots: { objects: { backend: s3 } }` (or filesystem, memstore)',
      settingAt,
      true,
    );
  }
  if (claim.threshold && !parseSize(claim.threshold)) {
    report(
      'error',
      'E_CLAIM_CHECK_THRESHOLD',
      `${label} claim_check.threshold must be larger than 0`,
      'for example 1MiB',
      [...settingAt, 'threshold'],
    );
  }
  if (claim.ttl && !parseDuration(claim.ttl)) {
    report('error', 'E_CLAIM_CHECK_TTL', `${label} claim_check.ttl must be longer than 0`, 'for example 7d', [
      ...settingAt,
      'ttl',
    ]);
  }
  if (type === 'consumer') {
    for (const field of ['threshold', 'compression', 'ttl'] as const) {
      if (claim[field]) {
        report(
          'warning',
          'E_CLAIM_CHECK_CONSUMER_FIELD',
          `${label} claim_check.${field} has no effect on a consumer: the producer's setting decides; a consumer only fetches claims from its objects slot`,
          'write `claim_check: {}` on the consumer',
          [...settingAt, field],
          true,
        );
      }
    }
  }
}

/** Header names every backend carries (src/runners/envelope.ts): printable ASCII without spaces or ':'. */
const HEADER_NAME = /^[!-9;-~]{1,256}$/;

/**
 * A mailbox indexes custom headers only: the envelope's own fields (prism-*, the trace context)
 * have their own filters or none, so indexing them would index nothing.
 */
function checkMailbox(
  pattern: Pattern,
  label: string,
  at: Path,
  error: (rule: string, message: string, hint: string, path: Path, key?: boolean) => void,
): void {
  const headers = pattern.settings?.indexedHeaders ?? [];
  const seen = new Set<string>();
  headers.forEach((name, i) => {
    const path: Path = [...at, 'settings', 'indexed_headers', i];
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name)) {
      error(
        'E_MAILBOX_HEADER',
        `${label} indexed_headers[${i}] ${JSON.stringify(name)} is not a header name`,
        "use printable ASCII without spaces or ':', for example order-id",
        path,
      );
    } else if (lower.startsWith('prism-') || lower === 'traceparent' || lower === 'tracestate') {
      error(
        'E_MAILBOX_HEADER',
        `${label} indexed_headers[${i}] '${name}' is an envelope field, not a custom header`,
        'filter on message id, correlation id, subject or tenant with their own Query fields; index only custom headers',
        path,
      );
    } else if (seen.has(name)) {
      error('E_MAILBOX_HEADER', `${label} indexes header '${name}' twice`, 'list each header once', path);
    }
    seen.add(name);
  });
  const retention = pattern.settings?.retention;
  if (retention && parseDuration(retention) === 0) {
    error(
      'E_DURATION',
      `${label} retention must be longer than 0: every message would be deleted as it arrives`,
      'for example 30d, or forever',
      [...at, 'settings', 'retention'],
    );
  }
}

const ENV_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;
const VAULT_REFERENCE = /^vault:\/\/[A-Za-z0-9_.\-/]+$/;

/**
 * DESIGN.md §4 rules 5 and 6, and which references can be served at all: `vault://` only in the
 * form Vault's database secrets engine serves, and only on a backend it has a plugin for. Slots
 * of other backends (Kafka, NATS) in a session-aware pattern take no credentials from the file:
 * they connect as the backend instance admits the proxy, and Prism's `access` separates callers.
 */
function checkCredentials(
  value: string,
  sessionAware: boolean,
  label: string,
  slot: { name: string; backend: string | undefined },
  at: Path,
  report: Report,
): void {
  const issuedByVault = slot.backend === undefined || vaultIssuesCredentials(slot.backend);
  /** What a session-aware slot of this backend does instead of static credentials. */
  const sessionHint = issuedByVault
    ? 'sessions get credentials from Vault'
    : `${slot.backend} slots of a session-aware pattern connect without credentials from the file`;
  if (value.startsWith('vault://')) {
    if (!VAULT_REFERENCE.test(value)) {
      report(
        'error',
        'E_CREDENTIALS_REF',
        `${label} has a malformed vault reference`,
        'write vault://<path>, e.g. vault://database/creds/orders',
        at,
      );
    } else if (!VAULT_DATABASE_REFERENCE.test(value)) {
      // Not echoed either: a path is no secret, but a secret pasted into one would be.
      report(
        'error',
        'E_CREDENTIALS_REF',
        `${label} has a vault reference Prism cannot lease from: only vault://database/creds/<role> (Vault's database secrets engine) is served`,
        'write vault://database/creds/<role>, e.g. vault://database/creds/orders',
        at,
      );
    } else if (!issuedByVault) {
      report(
        'error',
        'E_CREDENTIALS_VAULT_BACKEND',
        `${label} slot '${slot.name}' uses ${slot.backend}, and no Vault secrets engine issues ${slot.backend} credentials (vault:// works for ${vaultBackendsText()})`,
        backendTakesNoCredentials(slot.backend!)
          ? `${slot.backend} takes no credentials; remove \`credentials:\``
          : sessionAware
            ? `remove \`credentials:\`; ${sessionHint}`
            : 'use ${ENV_VAR} holding <username>:<password>, or remove `credentials:`',
        at,
      );
    }
    return;
  }
  if (ENV_REFERENCE.test(value)) {
    if (sessionAware) {
      report(
        'error',
        'E_SESSION_STATIC_CREDENTIALS',
        `${label} is session-aware (Vault is enabled) and may not use static credentials from the environment`,
        `remove \`credentials:\`; ${sessionHint}`,
        at,
      );
    }
    return;
  }
  // Never echo the value: it is probably a secret.
  if (sessionAware) {
    report(
      'error',
      'E_CREDENTIALS_LITERAL',
      `${label} holds a literal secret in a session-aware pattern`,
      `remove it; ${sessionHint}`,
      at,
    );
  } else {
    report(
      'warning',
      'E_CREDENTIALS_LITERAL',
      `${label} holds a literal secret`,
      issuedByVault ? 'use vault://<path> or ${ENV_VAR} instead' : 'use ${ENV_VAR} instead',
      at,
    );
  }
}

function checkSessions(
  ns: NamespaceRequest,
  vaultEnabled: boolean,
  error: (rule: string, message: string, hint: string, at: Path) => void,
): void {
  if (!vaultEnabled) return;
  const vault = ns.auth!.vault!;
  const managers = ns.patterns.filter((p) => p.type === 'session-manager').length;
  if (managers !== 1) {
    error(
      'E_SESSION_MANAGER_COUNT',
      `Vault is enabled, so the namespace needs exactly one session-manager pattern; it has ${managers}`,
      managers === 0
        ? 'add `- { name: sessions, type: session-manager, slots: { store: { backend: redis } } }`'
        : 'keep one session-manager',
      ['auth', 'vault', 'enabled'],
    );
  }
  if (!ns.auth!.enabled) {
    error(
      'E_VAULT_REQUIRES_AUTH',
      'Vault sessions start from a verified token, but auth is disabled',
      'set `auth.enabled: true` with an issuer and audiences',
      ['auth', 'vault', 'enabled'],
    );
  }
  if (!vault.address || !isUrl(vault.address)) {
    error(
      'E_VAULT_ADDRESS',
      vault.address
        ? 'auth.vault.address is not a URL'
        : 'Vault is enabled but auth.vault.address is missing',
      'for example http://localhost:8200',
      ['auth', 'vault', vault.address ? 'address' : 'enabled'],
    );
  }
  if (!vault.role) {
    error(
      'E_VAULT_ROLE',
      'Vault is enabled but auth.vault.role is missing',
      `for example prism-${ns.namespace || 'orders'}`,
      ['auth', 'vault', 'enabled'],
    );
  }
}

function checkAuth(
  ns: NamespaceRequest,
  error: (rule: string, message: string, hint: string, at: Path) => void,
): void {
  const auth = ns.auth;
  if (!auth?.enabled) return;
  if (!auth.issuer) {
    error(
      'E_AUTH_ISSUER',
      'auth is enabled but auth.issuer is missing',
      'for example https://login.example.com',
      ['auth', 'enabled'],
    );
  } else if (!isUrl(auth.issuer)) {
    error('E_AUTH_ISSUER', 'auth.issuer is not a URL', 'for example https://login.example.com', [
      'auth',
      'issuer',
    ]);
  } else {
    const url = new URL(auth.issuer);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      error(
        'E_AUTH_ISSUER_INSECURE',
        `auth.issuer must use https (plain http is allowed only for localhost), found ${url.protocol}//${url.host}`,
        'use an https issuer URL',
        ['auth', 'issuer'],
      );
    }
  }
  if (auth.audiences.length === 0) {
    error('E_AUTH_AUDIENCES', 'auth is enabled but auth.audiences is empty', 'add `audiences: [prismctl]`', [
      'auth',
      'enabled',
    ]);
  }
}

function isUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

export function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    hostname === '::1' ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname)
  );
}

function rawPattern(raw: Record<string, unknown>, index: number): Record<string, unknown> {
  const patterns = raw.patterns;
  const item: unknown = Array.isArray(patterns) ? patterns[index] : undefined;
  return typeof item === 'object' && item !== null ? (item as Record<string, unknown>) : {};
}
