import { describe, expect, it } from 'vitest';
import { formatColumns } from '../../../src/cli/output.js';

describe('formatColumns', () => {
  it('pads each column to its widest cell, two spaces apart, without trailing spaces', () => {
    expect(
      formatColumns([
        ['NAME', 'PID', 'STATE'],
        ['orders', '12345', 'serving'],
        ['a', '7', ''],
      ]),
    ).toBe(['NAME    PID    STATE', 'orders  12345  serving', 'a       7'].join('\n'));
  });

  it('formats nothing as the empty string', () => {
    expect(formatColumns([])).toBe('');
  });
});
