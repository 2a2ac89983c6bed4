#!/usr/bin/env node
// Bundles the CLI for a fast start (issue 16): one ESM module per oclif command, dist/prismctl.js
// (oclif's entry) and dist/complete.js (shell completion without oclif, see bin/run.js), sharing
// code through dist/chunks/. Runs after tsc in `npm run build`, and
// replaces tsc's dist/commands/*.js, which oclif's manifest points at; the rest of tsc's dist/
// stays for the processes spawned by path (dist/localstack/*-main.js) and the benchmarks.
//
//   node scripts/bundle.js [--packages bundle|external]
//
// --packages bundle (the default) also bundles the npm packages on the start path (oclif and its
// dependencies, protobuf-es, grpc-js, js-yaml); `external` leaves every package to node_modules.
import { build } from 'esbuild';
import { copyFileSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const { values } = parseArgs({ options: { packages: { type: 'string', default: 'bundle' } } });

// Left to node_modules even when packages are bundled: native addons (better-sqlite3; dockerode
// pulls ssh2 and cpu-features); packages that find their own files through __dirname, which ESM
// output lacks (pino's worker threads, prom-client, grpc-health-check and proto-loader's .proto
// files); servers and clients loaded only inside the commands that use them; and typescript,
// which oclif requires only to run commands from .ts sources.
const EXTERNAL = [
  'pino',
  'prom-client',
  'grpc-health-check',
  '@grpc/proto-loader',
  'better-sqlite3',
  'dockerode',
  'oidc-provider',
  'kafkajs',
  'ioredis',
  'pg',
  'nats',
  '@inquirer/prompts',
  'listr2',
  'tar-stream',
  'typescript',
];

const entryPoints = { prismctl: 'src/cli/main.ts', complete: 'src/cli/completion-main.ts' };
(function addCommands(dir) {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) addCommands(path);
    else if (path.endsWith('.ts')) entryPoints[path.slice('src/'.length, -'.ts'.length)] = path;
  }
})('src/commands');

rmSync(join(root, 'dist/chunks'), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints,
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  packages: values.packages === 'external' ? 'external' : undefined,
  external: values.packages === 'external' ? [] : EXTERNAL,
  // Bundled CommonJS packages call require() for Node built-ins; ESM output has no require.
  banner: {
    js: "import { createRequire as __prismRequire } from 'node:module'; const require = __prismRequire(import.meta.url);",
  },
  legalComments: 'none',
  logLevel: 'warning',
});

// structural.ts loads the precompiled validator next to itself (scripts/build-validator.js).
copyFileSync(
  join(root, 'dist/config/namespace-validator.cjs'),
  join(root, 'dist/chunks/namespace-validator.cjs'),
);
