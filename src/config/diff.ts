import { createTwoFilesPatch } from 'diff';

/** Unified diff of two canonical YAML texts; "" when they are equal. */
export function unifiedDiff(
  name: string,
  before: string,
  after: string,
  labels = ['stored', 'applied'],
): string {
  if (before === after) return '';
  return createTwoFilesPatch(
    `${labels[0]}/${name}.yaml`,
    `${labels[1]}/${name}.yaml`,
    before,
    after,
    '',
    '',
    { context: 3 },
  );
}
