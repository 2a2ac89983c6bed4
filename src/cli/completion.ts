import type { Command } from '@oclif/core';

/**
 * Shell completion: the shells' scripts (see completion-scripts.ts) hand the words typed so far to
 * the hidden `prismctl complete` command, which answers here from the commands' own definitions,
 * so completion can never drift from the CLI. One candidate per line, `value<TAB>description`;
 * the single line FILES_DIRECTIVE asks the shell to complete file names instead.
 */
export const FILES_DIRECTIVE = ':files';

/** Flags and arguments whose values are namespace names, completed from the admin. */
const NAMESPACE_FLAGS = new Set(['namespace']);
const NAMESPACE_ARGS = new Set(['namespace:get:name', 'namespace:delete:name', 'namespace:history:name']);

export interface Candidate {
  value: string;
  description?: string;
}

/**
 * What completion needs of the CLI's commands: oclif's Config, or the same read straight from
 * oclif.manifest.json (completion-main.ts) so that a TAB does not wait for oclif to start.
 */
export interface CommandCatalog {
  readonly commands: readonly Command.Cached[];
  findCommand(id: string): Command.Cached | undefined;
  findTopic(id: string): { description?: string } | undefined;
}

export interface CompletionContext {
  config: CommandCatalog;
  /** Namespace names from the control plane at `adminEndpoint` (undefined: the default endpoint). */
  namespaces: (adminEndpoint: string | undefined) => Promise<string[]>;
}

type FlagDef = Command.Cached['flags'][string];

/**
 * Candidates for the last of `words` (the words after `prismctl`, the last one being the word under
 * the cursor, possibly empty), or FILES_DIRECTIVE.
 */
export async function complete(context: CompletionContext, words: readonly string[]): Promise<string> {
  const current = words.at(-1) ?? '';
  const before = words.slice(0, -1);
  const { commandId, rest } = commandPath(context.config, before);
  const command = commandId ? context.config.findCommand(commandId) : undefined;

  if (!command) return render(subcommands(context.config, commandId, current), current);

  const flags = visibleFlags(command);
  const previous = rest.at(-1);
  const valueOf = previous ? flagTakingValue(flags, previous) : undefined;
  if (valueOf) {
    if (NAMESPACE_FLAGS.has(valueOf.name)) return render(await namespaceCandidates(context, rest), current);
    if (valueOf.type === 'option' && valueOf.options) {
      return render(
        valueOf.options.map((value) => ({ value })),
        current,
      );
    }
    return FILES_DIRECTIVE;
  }
  if (current.startsWith('-')) return render(flagCandidates(flags), current);

  const argIndex = positionalCount(flags, rest);
  const arg = Object.values(command.args)[argIndex];
  if (arg && NAMESPACE_ARGS.has(`${command.id}:${arg.name}`)) {
    return render(await namespaceCandidates(context, rest), current);
  }
  if (arg?.options)
    return render(
      arg.options.map((value) => ({ value })),
      current,
    );
  return FILES_DIRECTIVE;
}

/** The longest run of leading words naming a topic or command; what follows are its flags and args. */
function commandPath(
  config: CommandCatalog,
  words: readonly string[],
): { commandId: string; rest: string[] } {
  const ids = visibleCommandIds(config);
  let path: string[] = [];
  let index = 0;
  for (; index < words.length; index++) {
    const next = [...path, words[index]!].join(':');
    if (!ids.some((id) => id === next || id.startsWith(`${next}:`))) break;
    path = next.split(':');
  }
  return { commandId: path.join(':'), rest: words.slice(index) };
}

function visibleCommandIds(config: CommandCatalog): string[] {
  return config.commands.filter((command) => !command.hidden).map((command) => command.id);
}

/** The next word of every command under the topic `prefix` ('' for the top level). */
function subcommands(config: CommandCatalog, prefix: string, current: string): Candidate[] {
  const depth = prefix ? prefix.split(':').length : 0;
  const seen = new Map<string, string | undefined>();
  for (const command of config.commands) {
    if (command.hidden) continue;
    const parts = command.id.split(':');
    if (parts.length <= depth || (prefix && parts.slice(0, depth).join(':') !== prefix)) continue;
    const word = parts[depth]!;
    const id = parts.slice(0, depth + 1).join(':');
    const described = config.findTopic(id)?.description ?? config.findCommand(id)?.summary;
    if (!seen.has(word)) seen.set(word, firstLine(described));
  }
  return [...seen]
    .filter(([word]) => word.startsWith(current))
    .map(([value, description]) => ({ value, description }));
}

function visibleFlags(command: Command.Cached): FlagDef[] {
  return Object.values(command.flags).filter((flag) => !flag.hidden);
}

function flagCandidates(flags: readonly FlagDef[]): Candidate[] {
  return flags.map((flag) => ({
    value: `--${flag.name}`,
    description: firstLine(flag.summary ?? flag.description),
  }));
}

/** The flag `word` names when it is an option flag written without `=value`. */
function flagTakingValue(flags: readonly FlagDef[], word: string): FlagDef | undefined {
  if (word.includes('=')) return undefined;
  const flag = flags.find((f) => word === `--${f.name}` || (f.char !== undefined && word === `-${f.char}`));
  return flag?.type === 'option' ? flag : undefined;
}

/** How many positional arguments `words` (the words after the command) already hold. */
function positionalCount(flags: readonly FlagDef[], words: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') continue;
    if (word.startsWith('-')) {
      if (flagTakingValue(flags, word)) i++;
      continue;
    }
    count++;
  }
  return count;
}

async function namespaceCandidates(
  context: CompletionContext,
  words: readonly string[],
): Promise<Candidate[]> {
  const names = await context.namespaces(adminEndpointIn(words));
  return names.map((value) => ({ value }));
}

/** The `--admin` value typed on the line, if any. */
function adminEndpointIn(words: readonly string[]): string | undefined {
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word.startsWith('--admin=')) return word.slice('--admin='.length);
    if (word === '--admin') return words[i + 1];
  }
  return undefined;
}

function render(candidates: readonly Candidate[], current: string): string {
  return candidates
    .filter((candidate) => candidate.value.startsWith(current))
    .map((candidate) =>
      candidate.description ? `${candidate.value}\t${candidate.description}` : candidate.value,
    )
    .join('\n');
}

function firstLine(text: string | undefined): string | undefined {
  return text?.split('\n')[0]?.trim() || undefined;
}
