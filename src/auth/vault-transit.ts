/**
 * Vault's transit engine, for envelope encryption (src/runners/payload/encryption-stage.ts): new
 * data keys (`<mount>/datakey/plaintext/<key>`), unwrapping them (`<mount>/decrypt/<key>`), and
 * whether this identity may unwrap at all (`sys/capabilities-self`). Every call goes through a
 * VaultSession of the pattern's service identity, so the HTTP is vault-client.ts's; a session
 * whose token Vault no longer takes is replaced by a new login once. Key material comes back as
 * Buffers and is never put in an error or a log line.
 */
import { PrismError } from '../errors.js';
import type { VaultDefaults, VaultScope } from './vault-scope.js';
import type { VaultSession } from './vault-sessions.js';

/** How a runner reaches Vault with its service identity (vault-credentials.ts `session`). */
export interface VaultAccess {
  session(scope: VaultScope): Promise<VaultSession>;
  /** The process's Vault flags, for namespaces whose auth.vault does not say. */
  defaults: VaultDefaults;
}

/** A transit key: `<mount>/<name>`; the mount may have several segments. */
export interface TransitKeyRef {
  readonly mount: string;
  readonly name: string;
}

const KEY_REF = /^([A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*)\/([A-Za-z0-9_.-]+)$/;

/** `transit/orders` → { mount: 'transit', name: 'orders' }; E_INVALID_ARGUMENT otherwise. */
export function parseTransitKey(text: string, where: string): TransitKeyRef {
  const match = KEY_REF.exec(text);
  if (!match) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `${where}: encryption.key ${JSON.stringify(text)} is not <transit-mount>/<key-name>, e.g. transit/orders`,
    );
  }
  return { mount: match[1]!, name: match[2]! };
}

export function transitKeyText(key: TransitKeyRef): string {
  return `${key.mount}/${key.name}`;
}

/** A data key: its plaintext for AES-256 and Vault's ciphertext of it (`vault:v<version>:...`). */
export interface DataKey {
  plaintext: Buffer;
  wrapped: string;
  /** The transit key version that wrapped it. */
  version: number;
}

/** `vault:v3:...` → 3; 0 when the ciphertext names no version. */
export function wrappedKeyVersion(wrapped: string): number {
  const match = /^vault:v(\d+):/.exec(wrapped);
  return match ? Number(match[1]) : 0;
}

export class TransitClient {
  /** `session` is the service identity's current session (logged in again when it was lost). */
  constructor(private readonly session: () => Promise<VaultSession>) {}

  /** A new 256-bit data key, wrapped under the key's latest version. */
  async dataKey(key: TransitKeyRef): Promise<DataKey> {
    const path = `${key.mount}/datakey/plaintext/${key.name}`;
    const data = await this.write(path, { bits: 256 });
    const plaintext = typeof data.plaintext === 'string' ? Buffer.from(data.plaintext, 'base64') : undefined;
    const wrapped = data.ciphertext;
    if (plaintext?.length !== 32 || typeof wrapped !== 'string' || !wrapped.startsWith('vault:')) {
      throw new PrismError('E_UNAVAILABLE', `Vault answered ${path} without a 256-bit data key`);
    }
    const version = typeof data.key_version === 'number' ? data.key_version : wrappedKeyVersion(wrapped);
    return { plaintext, wrapped, version };
  }

  /** The plaintext of a wrapped data key (any key version Vault still decrypts). */
  async unwrap(key: TransitKeyRef, wrapped: string): Promise<Buffer> {
    const path = `${key.mount}/decrypt/${key.name}`;
    const data = await this.write(path, { ciphertext: wrapped });
    const plaintext = typeof data.plaintext === 'string' ? Buffer.from(data.plaintext, 'base64') : undefined;
    if (plaintext?.length !== 32) {
      throw new PrismError('E_INVALID_ARGUMENT', `Vault's ${path} did not yield a 256-bit data key`);
    }
    return plaintext;
  }

  /** Whether this identity's policy lets it unwrap under `key` (update on `<mount>/decrypt/<key>`). */
  async mayUnwrap(key: TransitKeyRef): Promise<boolean> {
    const path = `${key.mount}/decrypt/${key.name}`;
    const data = await this.write('sys/capabilities-self', { paths: [path] });
    const capabilities = Array.isArray(data[path]) ? (data[path] as unknown[]) : [];
    return capabilities.includes('update') || capabilities.includes('root');
  }

  private async write(path: string, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
    const session = await this.session();
    try {
      return await session.write(path, payload);
    } catch (err) {
      // The token is gone (revoked, run out): one new login, one retry.
      if (session.usable) throw err;
      return (await this.session()).write(path, payload);
    }
  }
}
