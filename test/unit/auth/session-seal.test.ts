import { describe, expect, it } from 'vitest';
import { seal, unseal } from '../../../src/auth/session-seal.js';

const secrets = {
  token: 's.vault-token',
  creds: { 'vault://database/creds/r': { username: 'u', password: 'p' } },
};

describe('sealing a shared caller session', () => {
  it('opens with the caller token and session id that sealed it', () => {
    const box = seal(secrets, 'caller.jwt.one', 'session-1');
    expect(unseal(box, 'caller.jwt.one', 'session-1')).toEqual(secrets);
  });

  it('never shows the token or a password in the box', () => {
    const box = seal(secrets, 'caller.jwt.one', 'session-1');
    const raw = Buffer.from(box, 'base64url').toString('latin1');
    expect(raw).not.toContain('s.vault-token');
    expect(box).not.toContain('s.vault-token');
    expect(raw).not.toContain('"password"');
  });

  it('refuses another caller token and another session id with E_UNAUTHENTICATED', () => {
    const box = seal(secrets, 'caller.jwt.one', 'session-1');
    expect(() => unseal(box, 'caller.jwt.two', 'session-1')).toThrow(
      expect.objectContaining({ code: 'E_UNAUTHENTICATED' }),
    );
    expect(() => unseal(box, 'caller.jwt.one', 'session-2')).toThrow(
      expect.objectContaining({ code: 'E_UNAUTHENTICATED' }),
    );
  });

  it('boxes the same value differently each time (a fresh IV)', () => {
    expect(seal(secrets, 't', 's')).not.toBe(seal(secrets, 't', 's'));
  });
});
