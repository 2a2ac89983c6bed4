import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPolicyText } from '../../../src/auth/policy/source-check.js';
import { validatePaths, validateSources } from '../../../src/config/validate.js';

const head = `namespace: reports
team: analytics
patterns:
  - name: cache
    type: keyvalue
    slots:
      store: { backend: memstore }
access:
  owners: [{ team: analytics }]
  policies:
`;

const findings = (text: string) =>
  validateSources([{ file: 'ns.yaml', text: head + text }]).report.diagnostics.map(
    (d) => `${d.file}:${d.line}:${d.column} ${d.severity} ${d.rule}: ${d.message}`,
  );
const rules = (text: string) =>
  validateSources([{ file: 'ns.yaml', text: head + text }]).report.diagnostics.map((d) => d.rule);

describe('access.policies validation', () => {
  it('names each problem by its rule id', () => {
    expect(rules('    - cedar: "permit (principal, action resource);"\n')).toEqual(['E_POLICY_SYNTAX']);
    expect(rules('    - cedar: "permit (principal, action, resource) when { context.x };"\n')).toEqual([
      'E_POLICY_SCHEMA',
    ]);
    expect(rules('    - {}\n')).toEqual(['E_POLICY_SOURCE']);
    expect(
      rules(
        '    - cedar: |\n        @id("a") permit (principal, action, resource);\n        @id("a") permit (principal, action, resource);\n',
      ),
    ).toEqual(['E_POLICY_ID']);
  });

  it('accepts valid inline policies', () => {
    expect(
      findings(`    - cedar: |
        permit (principal in Prism::Group::"analysts", action in Prism::Action::"read", resource is Prism::Key)
        when { resource.key like "reports/*" && context.hour >= 9 };
`),
    ).toEqual([]);
  });

  it('reports a syntax error in a block scalar at its line and column in the YAML', () => {
    expect(
      findings(`    - cedar: |
        // comment line
        permit (principal, action resource);
`),
    ).toEqual([
      'ns.yaml:13:35 error E_POLICY_SYNTAX: unexpected token `resource`: expected `!=`, `)`, `,`, `:`, `<`, `<=`, `==`, `>`, `>=`, `in`, or `is`',
    ]);
  });

  it('reports a schema error in a single-line quoted string at its column', () => {
    expect(
      findings(`    - cedar: "forbid (principal, action, resource) when { principal.team == \\"x\\" };"\n`),
    ).toEqual([
      'ns.yaml:11:59 error E_POLICY_SCHEMA: attribute `team` on entity type `Prism::User` not found',
    ]);
  });

  it('asks for `has` before an optional context attribute', () => {
    const out = findings(`    - cedar: |
        forbid (principal, action, resource) when { context.token_age_seconds > 43200 };
`);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^ns\.yaml:12:53 error E_POLICY_SCHEMA: .*token_age_seconds/);
  });

  it('reports a policy file problem at the file own path, line and column, and loads its text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-policies-'));
    mkdirSync(join(dir, 'policies'));
    writeFileSync(
      join(dir, 'policies', 'bad.cedar'),
      '@id("fresh")\nforbid (principal, action, resource)\nwhen { context.nope > 3 };\n',
    );
    writeFileSync(
      join(dir, 'policies', 'good.cedar'),
      'permit (principal, action == Prism::Action::"keyvalue.get", resource);\n',
    );
    writeFileSync(
      join(dir, 'ns.yaml'),
      head + '    - file: policies/bad.cedar\n    - file: policies/good.cedar\n',
    );
    const result = await validatePaths([join(dir, 'ns.yaml')]);
    expect(result.report.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.rule}`)).toEqual([
      `${join(dir, 'policies', 'bad.cedar')}:3:8 E_POLICY_SCHEMA`,
    ]);
    expect(result.loaded[0]?.request.access?.policies[1]?.cedar).toBe(
      readFileSync(join(dir, 'policies', 'good.cedar'), 'utf8'),
    );
  });

  it('refuses a missing policy file and a source with neither file nor text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-policies-'));
    writeFileSync(join(dir, 'ns.yaml'), head + '    - file: nowhere.cedar\n    - {}\n');
    const result = await validatePaths([join(dir, 'ns.yaml')]);
    expect(result.report.diagnostics.map((d) => `${d.line}:${d.column} ${d.rule}: ${d.message}`)).toEqual([
      `11:13 E_POLICY_FILE: policy file ${join(dir, 'nowhere.cedar')}: no such file`,
      '12:7 E_POLICY_SOURCE: a policy source names neither `file` nor `cedar`',
    ]);
  });

  it('refuses a file source without its text when the files cannot be read (the control plane)', () => {
    const result = validateSources([{ file: 'ns.yaml', text: head + '    - file: p.cedar\n' }], {
      readPolicyFiles: false,
    });
    expect(result.report.diagnostics.map((d) => d.rule)).toEqual(['E_POLICY_FILE']);
  });

  it('refuses two policies with one id, including an id of the default set', () => {
    const out = findings(`    - cedar: |
        @id("a")
        permit (principal, action, resource);
        @id("a")
        forbid (principal, action, resource);
    - cedar: '@id("default.owner.analytics") permit (principal, action, resource);'
`);
    expect(out).toEqual([
      "ns.yaml:11:7 error E_POLICY_ID: two policies have the id 'a' (access.policies[0]:3)",
      "ns.yaml:16:7 error E_POLICY_ID: two policies have the id 'default.owner.analytics' (access.policies[1]:1)",
    ]);
  });

  it('validates every Cedar example of docs/policies.md', () => {
    const doc = readFileSync('docs/policies.md', 'utf8');
    const blocks = [...doc.matchAll(/```cedar\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const block of blocks) expect(checkPolicyText(block)).toEqual([]);
  });
});
