import { readFileSync } from 'node:fs';
import { PrismError } from '../errors.js';

/** Reads a PEM file named by `flag`; a missing file or one that is not PEM fails naming both. */
export function readPem(file: string, flag: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new PrismError('E_INPUT_UNREADABLE', `cannot read ${flag} file ${file}: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN ')) {
    throw new PrismError('E_USAGE', `${file} (${flag}) is not a PEM file`, {
      hint: 'PEM files start with a -----BEGIN ...----- line',
    });
  }
  return pem;
}
