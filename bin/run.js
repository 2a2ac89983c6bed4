#!/usr/bin/env node
// Refuse an unsupported Node.js in one sentence, before loading anything that would fail obscurely
// on it (better-sqlite3 13 needs Node 22; 12, the last for Node 20, crashes on Node 24).
const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  process.stderr.write(
    `prismctl needs Node.js 22 or later; this is ${process.version}. ` +
      'Install a current LTS (24) from https://nodejs.org or your package manager, then run prismctl again.\n',
  );
  process.exit(1);
}

const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
