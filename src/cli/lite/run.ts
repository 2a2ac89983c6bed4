import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { needsOclif, type Command, type LiteConfig } from './command.js';

/** Commands the fast path leaves to oclif: `complete` reads oclif's Config for its catalog. */
const OCLIF_ONLY = new Set(['complete']);

type CommandClass = (new (argv: string[], config: LiteConfig) => Command) & { id?: string };

/**
 * Runs a command line without loading oclif (bin/run.js; issue 16's fast start): the command's
 * bundle from dist/fast/, built with src/cli/lite/oclif-core.ts standing for `@oclif/core`.
 * Returns false, before any command has run, for every line oclif itself must answer: help,
 * topics, unknown commands, and any usage error oclif's parser finds (oclif then reports it).
 */
export async function fastMain(root: string, argv: readonly string[]): Promise<boolean> {
  const found = commandOf(root, argv);
  if (!found || usesTheme()) return false;
  const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  const module = (await import(
    pathToFileURL(join(root, 'dist/fast/commands', ...found.id.split(':'))).href + '.js'
  )) as { default: CommandClass };
  const Class = module.default;
  Class.id = found.id;
  const config: LiteConfig = { root, version: pjson.version, name: pjson.name, bin: 'prismctl' };
  try {
    await new Class([...found.argv], config)._run();
  } catch (error) {
    if (needsOclif(error)) return false;
    const exit = (error as { oclif?: { exit?: number } }).oclif?.exit;
    // As oclif's handle(): an exit the command asked for ends the process at once, quietly.
    if (exit !== undefined && (error as { code?: string }).code === 'EEXIT') process.exit(exit);
    const { handle } = (await import(pathToFileURL(join(root, 'dist/prismctl.js')).href)) as {
      handle: (err: unknown) => Promise<void>;
    };
    await handle(error);
  }
  await new Promise<void>((resolve) => {
    if (process.stdout.write('')) resolve();
    else process.stdout.once('drain', () => resolve());
  });
  return true;
}

/** The command id and its arguments, as oclif reads a space-separated command line. */
function commandOf(root: string, argv: readonly string[]): { id: string; argv: string[] } | undefined {
  const end = argv.indexOf('--');
  const options = end === -1 ? argv : argv.slice(0, end);
  if (options.includes('--help') || options.includes('-h')) return undefined;
  // The command ids scripts/bundle.js bundled (oclif.manifest.json has them too, at 30x the size).
  const index = join(root, 'dist/fast/commands.json');
  if (!existsSync(index)) return undefined;
  const commands = new Set(JSON.parse(readFileSync(index, 'utf8')) as string[]);
  let found: { id: string; argv: string[] } | undefined;
  for (let i = 1; i <= argv.length; i++) {
    const word = argv[i - 1]!;
    if (word.startsWith('-') || word.includes(':')) break;
    const id = argv.slice(0, i).join(':');
    if (commands.has(id)) found = { id, argv: argv.slice(i) };
  }
  return found && !OCLIF_ONLY.has(found.id) ? found : undefined;
}

/** oclif colours --json output by a theme.json in its config directory; the fast path does not. */
function usesTheme(): boolean {
  const configHome = process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config');
  const dir = process.env.PRISMCTL_CONFIG_DIR ?? join(configHome, 'prism');
  return existsSync(join(dir, 'theme.json'));
}
