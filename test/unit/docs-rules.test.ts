import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

function ruleIdsInSource(): string[] {
  const dir = join(root, 'src/config');
  const ids = new Set<string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    for (const match of readFileSync(join(dir, file), 'utf8').matchAll(/'(E_[A-Z_]+)'/g))
      ids.add(match[1] as string);
  }
  // PrismError codes (src/errors.ts) are not validator rule ids.
  const codes = new Set(
    readFileSync(join(root, 'src/errors.ts'), 'utf8')
      .match(/'E_[A-Z_]+'/g)
      ?.map((c) => c.slice(1, -1)),
  );
  return [...ids].filter((id) => !codes.has(id)).sort();
}

describe('docs/namespace-rules.md', () => {
  it('documents every rule id that the validator can report', () => {
    const doc = readFileSync(join(root, 'docs/namespace-rules.md'), 'utf8');
    const undocumented = ruleIdsInSource().filter((id) => !doc.includes(`\`${id}\``));
    expect(undocumented).toEqual([]);
  });
});
