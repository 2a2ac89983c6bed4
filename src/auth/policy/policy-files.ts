import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { PrismError } from '../../errors.js';
import type { NamedPolicy } from './defaults.js';
import { checkPolicyText, splitPolicies } from './source-check.js';

/**
 * Reads global policies (`admin serve --policies`): .cedar files, or directories of them
 * (recursively, in name order). Every problem is reported as `path:line:col: error RULE: message`
 * in one E_USAGE error, so a server never starts with policies it cannot evaluate.
 */
export function loadPolicyFiles(paths: readonly string[]): NamedPolicy[] {
  const files = paths.flatMap((path) => {
    let info;
    try {
      info = statSync(path);
    } catch {
      throw new PrismError('E_USAGE', `policy path ${path}: no such file or directory`);
    }
    if (!info.isDirectory()) return [path];
    return readdirSync(path, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && extname(e.name) === '.cedar')
      .map((e) => join(e.parentPath, e.name))
      .sort();
  });
  if (files.length === 0)
    throw new PrismError('E_USAGE', `no .cedar files under ${paths.join(', ')}`, {
      hint: 'give a .cedar file or a directory that holds some',
    });
  const problems: string[] = [];
  const policies: NamedPolicy[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const found = checkPolicyText(text).filter((p) => p.severity === 'error');
    for (const p of found) problems.push(`${file}:${p.line}:${p.column}: error ${p.rule}: ${p.message}`);
    if (found.length === 0) policies.push(...splitPolicies(text, file));
  }
  const ids = new Set<string>();
  for (const p of policies) {
    if (ids.has(p.id) || p.id.startsWith('default.'))
      problems.push(`${p.source}:${p.line}:1: error E_POLICY_ID: the id '${p.id}' is taken`);
    ids.add(p.id);
  }
  if (problems.length > 0)
    throw new PrismError('E_USAGE', `invalid policies:\n${problems.join('\n')}`, {
      hint: 'see docs/policies.md for the entities, actions and context Prism provides',
    });
  return policies;
}
