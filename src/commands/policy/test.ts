import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { PrismError } from '../../errors.js';
import { explainDecision, type Explanation } from '../../auth/policy/explain.js';
import { loadNamespaceFile } from '../../auth/policy/load-namespace.js';

export default class PolicyTest extends BaseCommand {
  static override summary = "Explain one decision of a namespace's policies, offline";
  static override description = `Loads and validates the namespace file (policy files included), evaluates the default policy set and access.policies for the principal, action and resource given, and says which policies permitted or forbade it (docs/policies.md). Exit code 0 whatever the decision; 1 when the namespace is invalid.`;
  static override examples = [
    '<%= config.bin %> policy test reports.yaml --principal ann --group analysts --action keyvalue.get --resource cache:reports/q1 --time 2026-12-03T10:00:00Z',
    '<%= config.bin %> policy test orders.yaml --principal svc-checkout --action Publish --resource orders.created --json',
  ];
  static override enableJsonFlag = true;
  static override args = {
    namespace: Args.string({ description: 'Namespace file', required: true }),
  };
  static override flags = {
    name: Flags.string({ description: 'The namespace to test when the file declares several' }),
    principal: Flags.string({ description: "The caller's subject (token sub)", required: true }),
    email: Flags.string({ description: "The caller's email claim" }),
    tenant: Flags.string({ description: "The caller's tenant claim" }),
    group: Flags.string({ description: 'A group of the caller (repeatable)', multiple: true }),
    scope: Flags.string({ description: 'A scope of the caller (repeatable)', multiple: true }),
    claim: Flags.string({ description: 'Another token claim, name=value (repeatable)', multiple: true }),
    action: Flags.string({ description: 'Action id (keyvalue.get) or gRPC method (Get)', required: true }),
    resource: Flags.string({
      description: '<pattern>:<key or topic>; the pattern may be left out when one pattern serves the action',
    }),
    time: Flags.string({ description: 'The time of the call, ISO 8601 (default: now)' }),
    'client-ip': Flags.string({ description: "The caller's IP address" }),
    'token-age': Flags.integer({
      description: 'Seconds since the token was issued (default: no iat)',
      min: 0,
    }),
  };

  async run(): Promise<Explanation> {
    const { args, flags } = await this.parse(PolicyTest);
    const ns = await loadNamespaceFile(args.namespace, flags.name);
    const claims = Object.fromEntries(
      (flags.claim ?? []).map((c) => {
        const eq = c.indexOf('=');
        if (eq <= 0) throw new PrismError('E_USAGE', `--claim '${c}' is not name=value`);
        return [c.slice(0, eq), c.slice(eq + 1)];
      }),
    );
    const explained = explainDecision(ns, {
      principal: {
        subject: flags.principal,
        email: flags.email,
        tenant: flags.tenant,
        groups: flags.group,
        scopes: flags.scope,
        claims,
      },
      action: flags.action,
      resource: flags.resource,
      context: { time: flags.time, client_ip: flags['client-ip'], token_age_seconds: flags['token-age'] },
    });
    if (!this.jsonEnabled()) this.write(render(explained));
    return explained;
  }
}

function render(e: Explanation): string {
  const r = e.resource;
  const what =
    r.key !== undefined
      ? `key '${r.key}'`
      : r.topic !== undefined
        ? `topic '${r.topic}'`
        : `namespace '${r.namespace}'`;
  const head = `${e.decision.toUpperCase()}: ${e.action} on ${what}${r.pattern ? ` (pattern ${r.pattern})` : ''} in ${e.namespace}\n`;
  const why =
    e.policies.length === 0
      ? e.decision === 'deny'
        ? '  no policy permits it (denied by default)\n'
        : ''
      : e.policies
          .map(
            (p) =>
              `  ${p.effect === 'forbid' ? 'forbidden' : 'permitted'} by ${p.id} (${p.line > 0 ? `${p.source}:${p.line}` : p.source})\n` +
              p.text
                .split('\n')
                .map((l) => `    ${l}\n`)
                .join(''),
          )
          .join('');
  const errors = e.errors.map((err) => `  skipped (evaluation error): ${err}\n`).join('');
  return head + why + errors;
}
