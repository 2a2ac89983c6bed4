import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '@oclif/core';
import { complete, type CommandCatalog } from './completion.js';
import { namespacesFrom } from './completion-namespaces.js';

/**
 * `prismctl complete -- <words>` without starting oclif: the shells run it on every TAB, so
 * bin/run.js sends it here, and the answer comes from the same command definitions oclif uses,
 * read from oclif.manifest.json, with the topics of package.json. Same output as the `complete`
 * command (src/commands/complete.ts), which oclif runs when the manifest is missing.
 */
export async function completeMain(root: string, words: readonly string[]): Promise<void> {
  const answer = await complete(
    { config: catalogFrom(root), namespaces: namespacesFrom },
    words.length ? words : [''],
  );
  if (answer) process.stdout.write(`${answer}\n`);
}

function catalogFrom(root: string): CommandCatalog {
  const manifest = JSON.parse(readFileSync(join(root, 'oclif.manifest.json'), 'utf8')) as {
    commands: Record<string, Command.Cached>;
  };
  const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    oclif?: { topics?: Record<string, { description?: string }> };
  };
  // As oclif's Config builds them: commands sorted by id; the topics of package.json, then one for
  // every prefix of a visible command's id, described by the first such command.
  const commands = Object.values(manifest.commands).sort((a, b) => a.id.localeCompare(b.id));
  const topics = new Map<string, { description?: string }>(Object.entries(pjson.oclif?.topics ?? {}));
  for (const command of commands.filter((c) => !c.hidden)) {
    const parts = command.id.split(':');
    for (; parts.length > 0; parts.pop()) {
      const name = parts.join(':');
      if (!topics.has(name)) topics.set(name, { description: command.summary || command.description });
    }
  }
  return {
    commands,
    findCommand: (id) => manifest.commands[id],
    findTopic: (id) => topics.get(id),
  };
}
