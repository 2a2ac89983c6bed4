import { BaseCommand } from '../cli/base-command.js';
import { describe, freshAccessToken } from '../auth/login.js';
import { DEFAULT_SCOPES } from '../auth/oidc-config.js';
import { TokenCache } from '../auth/token-cache.js';
import { prismHome } from '../config/home.js';
import { PrismError } from '../errors.js';

export default class Whoami extends BaseCommand {
  static override summary = 'Show who you are logged in as: subject, email, groups, issuer and expiry';
  static override enableJsonFlag = true;

  async run(): Promise<ReturnType<typeof describe>> {
    await this.parse(Whoami);
    const cache = new TokenCache(prismHome());
    const cached = cache.read();
    if (!cached) throw new PrismError('E_UNAUTHENTICATED', 'not logged in', { hint: 'run prismctl login' });
    const who = describe(
      await freshAccessToken(
        { issuer: cached.issuer, clientId: cached.clientId, scopes: DEFAULT_SCOPES },
        cache,
      ),
    );
    if (!this.jsonEnabled()) {
      this.log(`subject: ${who.subject}`);
      if (who.email) this.log(`email:   ${who.email}`);
      this.log(`groups:  ${who.groups.join(', ') || '(none)'}`);
      this.log(`issuer:  ${who.issuer}`);
      this.log(`expires: ${who.expiresAt}`);
    }
    return who;
  }
}
