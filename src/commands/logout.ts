import { BaseCommand } from '../cli/base-command.js';
import { oidcFlags } from '../cli/oidc-flags.js';
import { logout } from '../auth/login.js';
import { DEFAULT_SCOPES } from '../auth/oidc-config.js';
import { TokenCache } from '../auth/token-cache.js';
import { prismHome } from '../config/home.js';

export default class Logout extends BaseCommand {
  static override summary =
    'Revoke the refresh token where the provider allows it, and delete the token cache';
  static override enableJsonFlag = true;
  static override flags = { ...oidcFlags };

  async run(): Promise<{ revoked: boolean }> {
    const { flags } = await this.parse(Logout);
    const cache = new TokenCache(prismHome());
    let cached;
    try {
      cached = cache.read();
    } catch {
      cached = undefined; // a cache with loose permissions is still deleted
    }
    const settings = {
      issuer: flags.issuer ?? cached?.issuer ?? '',
      clientId: flags['client-id'] ?? cached?.clientId ?? 'prismctl',
      scopes: flags.scopes ?? DEFAULT_SCOPES,
    };
    const result = await logout(settings, cache);
    if (!this.jsonEnabled())
      this.logToStderr(
        result.revoked
          ? 'logged out; the refresh token was revoked'
          : 'logged out; the token cache was deleted',
      );
    return result;
  }
}
