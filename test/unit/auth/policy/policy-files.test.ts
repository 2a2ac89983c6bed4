import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPolicyFiles } from '../../../../src/auth/policy/policy-files.js';

describe('global policy files (admin serve --policies)', () => {
  it('reads a directory of .cedar files in name order, with ids from @id or file:line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-global-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(
      join(dir, 'b.cedar'),
      '\n@id("named")\nforbid (principal, action, resource) when { false };\n',
    );
    writeFileSync(join(dir, 'sub', 'a.cedar'), 'permit (principal, action, resource) when { false };\n');
    writeFileSync(join(dir, 'notes.txt'), 'not a policy');
    expect(loadPolicyFiles([dir]).map((p) => [p.id, p.source, p.line])).toEqual([
      ['named', join(dir, 'b.cedar'), 2],
      [`${join(dir, 'sub', 'a.cedar')}:1`, join(dir, 'sub', 'a.cedar'), 1],
    ]);
  });

  it('refuses invalid policies, repeated or default. ids, and a directory without policies', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-global-'));
    writeFileSync(join(dir, 'bad.cedar'), 'permit (principal, action, resource)\nwhen { principal.nope };\n');
    expect(() => loadPolicyFiles([join(dir, 'bad.cedar')])).toThrow(
      `${join(dir, 'bad.cedar')}:2:8: error E_POLICY_SCHEMA: attribute \`nope\` on entity type \`Prism::User\` not found`,
    );
    writeFileSync(
      join(dir, 'ids.cedar'),
      '@id("default.x")\npermit (principal, action, resource);\n@id("y") permit (principal, action, resource);\n@id("y") permit (principal, action, resource);\n',
    );
    expect(() => loadPolicyFiles([join(dir, 'ids.cedar')])).toThrow(
      `${join(dir, 'ids.cedar')}:1:1: error E_POLICY_ID: the id 'default.x' is taken\n${join(dir, 'ids.cedar')}:4:1: error E_POLICY_ID: the id 'y' is taken`,
    );
    const empty = mkdtempSync(join(tmpdir(), 'prism-global-empty-'));
    expect(() => loadPolicyFiles([empty])).toThrow(`no .cedar files under ${empty}`);
  });
});
