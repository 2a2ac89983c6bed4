/**
 * Sealing what a shared caller session must not show in clear (DESIGN.md §7): its Vault token and
 * the backend credentials leased with it. The key is derived (HKDF-SHA-256) from the caller's own
 * bearer token with the session id as salt, and the box is AES-256-GCM: whoever reads the session
 * store without the caller's token learns nothing, and whoever holds the token could log in to
 * Vault as the caller anyway. A box opened with another token fails its authentication tag.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { PrismError } from '../errors.js';

const INFO = Buffer.from('prism caller session v1');
const IV_BYTES = 12;
const TAG_BYTES = 16;

function keyFor(callerToken: string, sessionId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(callerToken), Buffer.from(sessionId), INFO, 32));
}

/** base64url(iv | tag | ciphertext) of the JSON of `value`. */
export function seal(value: unknown, callerToken: string, sessionId: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keyFor(callerToken, sessionId), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** The value `seal` boxed; E_UNAUTHENTICATED when the token or session id is not the sealer's. */
export function unseal<T>(box: string, callerToken: string, sessionId: string): T {
  const raw = Buffer.from(box, 'base64url');
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      keyFor(callerToken, sessionId),
      raw.subarray(0, IV_BYTES),
    );
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    const text = Buffer.concat([
      decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
    return JSON.parse(text) as T;
  } catch {
    throw new PrismError('E_UNAUTHENTICATED', 'the caller session cannot be opened with this token');
  }
}
