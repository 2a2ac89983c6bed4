import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PrismError } from '../errors.js';

/** What `prismctl login` keeps between commands. */
export interface CachedTokens {
  issuer: string;
  clientId: string;
  accessToken: string;
  refreshToken?: string;
  idToken?: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

/** The token cache file in a prism home: directory 0700, file 0600, looser modes refused. */
export class TokenCache {
  readonly file: string;

  constructor(private readonly home: string) {
    this.file = join(home, 'tokens.json');
  }

  read(): CachedTokens | undefined {
    let mode: number;
    try {
      mode = statSync(this.file).mode & 0o777;
    } catch {
      return undefined;
    }
    const dirMode = statSync(this.home).mode & 0o777;
    if (mode & 0o077 || dirMode & 0o077) {
      throw new PrismError(
        'E_UNAUTHENTICATED',
        `the token cache ${this.file} is readable by others (file ${octal(mode)}, directory ${octal(dirMode)}); refusing to use it`,
        {
          hint: `run: chmod 700 ${this.home} && chmod 600 ${this.file}, or prismctl logout and log in again`,
        },
      );
    }
    return JSON.parse(readFileSync(this.file, 'utf8')) as CachedTokens;
  }

  write(tokens: CachedTokens): void {
    mkdirSync(this.home, { recursive: true, mode: 0o700 });
    chmodSync(this.home, 0o700);
    writeFileSync(this.file, JSON.stringify(tokens, null, 2) + '\n', { mode: 0o600 });
    chmodSync(this.file, 0o600);
  }

  delete(): void {
    rmSync(this.file, { force: true });
  }
}

const octal = (mode: number) => `0${mode.toString(8)}`;
