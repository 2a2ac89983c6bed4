/**
 * What `prismctl login` tells the person, and the browser it opens for them. The code and URL are
 * always printed; opening the browser is a convenience that never fails the login.
 */
import type { BrowserPrompt } from './browser-login.js';
import type { DevicePrompt } from './login.js';
import { openBrowser } from './open-browser.js';

export interface PromptOptions {
  /** Write one line for the person (stderr in the command). */
  say: (line: string) => void;
  /** False with --no-browser. */
  openBrowser: boolean;
  /** Replaces the platform opener (tests). */
  opener?: (url: string) => Promise<boolean>;
}

/** Device flow: prints the URL and code, then opens the verification page when allowed. */
export function devicePrompter(options: PromptOptions): (prompt: DevicePrompt) => void {
  return (prompt) => {
    const url = prompt.verificationUriComplete ?? prompt.verificationUri;
    options.say(`To log in, open ${url}`);
    options.say(
      `and enter the code ${prompt.userCode} (valid for ${Math.round(prompt.expiresIn / 60)} minutes).`,
    );
    open(url, options);
    options.say('Waiting for approval...');
  };
}

/** Authorization code + PKCE: prints the URL, then opens it when allowed. */
export function browserPrompter(options: PromptOptions): (prompt: BrowserPrompt) => void {
  return (prompt) => {
    options.say(`To log in, open ${prompt.url}`);
    open(prompt.url, options);
    options.say(`Waiting for the identity provider to send the browser back to ${prompt.redirectUri}...`);
  };
}

function open(url: string, options: PromptOptions): void {
  if (!options.openBrowser) return;
  const opener = options.opener ?? ((u: string) => openBrowser(u));
  void opener(url)
    .then((opened) => {
      if (opened) options.say('(opened in your browser)');
    })
    .catch(() => undefined);
}
