/**
 * Opening the login page in a browser for `prismctl login` (device flow and --browser): only
 * where someone can see it (a display on Linux; always on macOS and Windows) and never over SSH,
 * where a browser would open on the far machine or not at all. The opener runs detached with its
 * output ignored; a missing or failing opener only means the person opens the printed URL.
 */
import { spawn } from 'node:child_process';

export interface BrowserEnvironment {
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
}

/** Whether to open a browser here: not over SSH, and with a display unless macOS or Windows. */
export function canOpenBrowser(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): boolean {
  if (env.SSH_CONNECTION || env.SSH_CLIENT || env.SSH_TTY) return false;
  if (platform === 'darwin' || platform === 'win32') return true;
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
}

/** The platform's opener: open (macOS), start (Windows), xdg-open (elsewhere). */
export function openerCommand(
  url: string,
  platform: NodeJS.Platform = process.platform,
): { command: string; args: string[]; verbatim: boolean } {
  if (platform === 'darwin') return { command: 'open', args: [url], verbatim: false };
  // start's first quoted argument is a window title; the URL is quoted so & does not end the command.
  if (platform === 'win32')
    return { command: 'cmd', args: ['/c', 'start', '""', `"${url.replace(/"/g, '%22')}"`], verbatim: true };
  return { command: 'xdg-open', args: [url], verbatim: false };
}

/**
 * Opens the URL when `canOpenBrowser` allows it. Resolves true once the opener started, false
 * when not allowed or the opener could not start; never rejects.
 */
export function openBrowser(url: string, where: BrowserEnvironment = {}): Promise<boolean> {
  const env = where.env ?? process.env;
  const platform = where.platform ?? process.platform;
  if (!canOpenBrowser(env, platform)) return Promise.resolve(false);
  const { command, args, verbatim } = openerCommand(url, platform);
  return new Promise((resolve) => {
    try {
      const child = spawn(command, args, {
        env,
        stdio: 'ignore',
        detached: true,
        windowsVerbatimArguments: verbatim,
      });
      child.once('error', () => resolve(false));
      child.once('spawn', () => {
        child.unref();
        resolve(true);
      });
    } catch {
      resolve(false);
    }
  });
}
