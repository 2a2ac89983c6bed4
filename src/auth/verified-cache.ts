import { createHash } from 'node:crypto';
import type { VerifiedIdentity } from './verify.js';

/**
 * Tokens already verified, keyed by a SHA-256 of the token (the token itself is never kept), until
 * the token expires or `maxAgeMs` passes, whichever is first. Verifying a signature on every call
 * cost the proxy ~250 µs of CPU per call (bench/auth); a JWT access token cannot be revoked
 * before it expires, so remembering the result changes nothing a caller can observe.
 */
export class VerifiedTokenCache {
  private readonly entries = new Map<string, { identity: VerifiedIdentity; until: number }>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly maxAgeMs = 5 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async get(
    scope: string,
    token: string,
    verify: () => Promise<VerifiedIdentity>,
  ): Promise<VerifiedIdentity> {
    const key = createHash('sha256').update(scope).update('\0').update(token).digest('base64');
    const now = this.now();
    const hit = this.entries.get(key);
    if (hit && hit.until > now) return hit.identity;
    if (hit) this.entries.delete(key);
    const identity = await verify();
    const expiresMs = identity.expiresAt !== undefined ? identity.expiresAt * 1000 : now;
    const until = Math.min(expiresMs, now + this.maxAgeMs);
    if (until > now) {
      if (this.entries.size >= this.maxEntries)
        this.entries.delete(this.entries.keys().next().value as string);
      this.entries.set(key, { identity, until });
    }
    return identity;
  }
}
