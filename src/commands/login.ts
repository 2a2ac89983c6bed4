import { BaseCommand } from '../cli/base-command.js';
import { oidcFlags } from '../cli/oidc-flags.js';
import { describe, deviceLogin } from '../auth/login.js';
import { oidcSettings } from '../auth/oidc-config.js';
import { TokenCache } from '../auth/token-cache.js';
import { prismHome } from '../config/home.js';

export default class Login extends BaseCommand {
  static override summary = 'Log in with the OIDC device flow and cache the tokens';
  static override description = `Prints a code and a URL: open the URL on any device, enter the code and approve. The tokens are kept in the prism home (directory 0700, file 0600) and refreshed before they expire; every command that talks to the admin or the proxy uses them. PRISM_TOKEN (or --token on data commands) bypasses the cache for CI jobs.`;
  static override examples = ['<%= config.bin %> login --issuer http://127.0.0.1:5556/dex'];
  static override enableJsonFlag = true;
  static override flags = { ...oidcFlags };

  async run(): Promise<ReturnType<typeof describe>> {
    const { flags } = await this.parse(Login);
    const home = prismHome();
    const settings = oidcSettings(home, {
      issuer: flags.issuer,
      clientId: flags['client-id'],
      scopes: flags.scopes,
    });
    const tokens = await deviceLogin(settings, new TokenCache(home), (prompt) => {
      this.logToStderr(`To log in, open ${prompt.verificationUriComplete ?? prompt.verificationUri}`);
      this.logToStderr(
        `and enter the code ${prompt.userCode} (valid for ${Math.round(prompt.expiresIn / 60)} minutes).`,
      );
      this.logToStderr('Waiting for approval...');
    });
    const who = describe(tokens);
    if (!this.jsonEnabled())
      this.logToStderr(
        `logged in as ${who.email ?? who.subject} (groups: ${who.groups.join(', ') || 'none'})`,
      );
    return who;
  }
}
