import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { browserLogin } from '../auth/browser-login.js';
import { browserPrompter, devicePrompter } from '../auth/login-prompt.js';
import { oidcFlags } from '../cli/oidc-flags.js';
import { describe, deviceLogin } from '../auth/login.js';
import { oidcSettings } from '../auth/oidc-config.js';
import { TokenCache } from '../auth/token-cache.js';
import { prismHome } from '../config/home.js';

export default class Login extends BaseCommand {
  static override summary = 'Log in with the OIDC device flow and cache the tokens';
  static override description = `Prints a code and a URL: open the URL on any device, enter the code and approve. With a display (always on macOS and Windows) and not over SSH, the URL also opens in your browser; --no-browser turns that off. The tokens are kept in the prism home (directory 0700, file 0600) and refreshed before they expire; every command that talks to the admin or the proxy uses them. PRISM_TOKEN (or --token on data commands) bypasses the cache for CI jobs.`;
  static override examples = [
    '<%= config.bin %> login --issuer http://127.0.0.1:5556/dex',
    '<%= config.bin %> login --browser',
  ];
  static override enableJsonFlag = true;
  static override flags = {
    ...oidcFlags,
    browser: Flags.boolean({
      description:
        'Use authorization code + PKCE with a loopback redirect (http://127.0.0.1:<port>/callback) instead of the device flow',
    }),
    'no-browser': Flags.boolean({
      description:
        'Only print the login URL; do not open a browser (it opens when there is a display and not over SSH)',
    }),
  };

  async run(): Promise<ReturnType<typeof describe>> {
    const { flags } = await this.parse(Login);
    const home = prismHome();
    const settings = oidcSettings(home, {
      issuer: flags.issuer,
      clientId: flags['client-id'],
      scopes: flags.scopes,
    });
    const cache = new TokenCache(home);
    // The prompt goes to stderr even with --json (oclif's logToStderr is silent then): the person
    // must see where to log in while stdout stays machine-readable.
    const say = (line: string) => process.stderr.write(`${line}\n`);
    const prompt = { say, openBrowser: !flags['no-browser'] };
    const tokens = flags.browser
      ? await browserLogin(settings, cache, browserPrompter(prompt))
      : await deviceLogin(settings, cache, devicePrompter(prompt));
    const who = describe(tokens);
    if (!this.jsonEnabled())
      this.logToStderr(
        `logged in as ${who.email ?? who.subject} (groups: ${who.groups.join(', ') || 'none'})`,
      );
    return who;
  }
}
