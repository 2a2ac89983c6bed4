import { writeFile } from 'node:fs/promises';
import { PrismError } from '../errors.js';

/** Writes to a file (never overwriting unless forced) or to stdout when no file is given. */
export async function writeOutput(
  text: string,
  file: string | undefined,
  options: { force?: boolean; overwriteHint: string; mode?: number },
): Promise<void> {
  if (!file || file === '-') {
    process.stdout.write(text);
    return;
  }
  try {
    await writeFile(file, text, { flag: options.force ? 'w' : 'wx', mode: options.mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new PrismError('E_FILE_EXISTS', `${file} already exists`, { hint: options.overwriteHint });
    }
    throw new PrismError(
      'E_INPUT_UNREADABLE',
      `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      {
        hint: 'check the directory exists and is writable',
      },
    );
  }
}

/** Rows as text columns two spaces apart, each as wide as its widest cell; no trailing newline. */
export function formatColumns(rows: ReadonlyArray<readonly string[]>): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => row[i]?.length ?? 0))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
