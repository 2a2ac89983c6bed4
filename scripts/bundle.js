#!/usr/bin/env node
// Bundles the CLI for a fast start (issue 16): one ESM module per oclif command, dist/prismctl.js
// (oclif's entry) and dist/complete.js (shell completion without oclif, see bin/run.js), sharing
// code through dist/chunks/; and the same commands again under dist/fast/ with `@oclif/core`
// standing for src/cli/lite/oclif-core.ts (oclif's parser without the rest of oclif), which
// bin/run.js runs first (src/cli/lite/run.ts). Runs after tsc in `npm run build`, and
// replaces tsc's dist/commands/*.js, which oclif's manifest points at; the rest of tsc's dist/
// stays for the processes spawned by path (dist/localstack/*-main.js) and the benchmarks.
//
//   node scripts/bundle.js [--packages bundle|external]
//
// --packages bundle (the default) also bundles the npm packages on the start path (oclif and its
// dependencies, protobuf-es, grpc-js, js-yaml); `external` leaves every package to node_modules.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
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

const commands = {};
(function addCommands(dir) {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) addCommands(path);
    else if (path.endsWith('.ts')) commands[path.slice('src/'.length, -'.ts'.length)] = path;
  }
})('src/commands');

const common = {
  absWorkingDir: root,
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
};

rmSync(join(root, 'dist/chunks'), { recursive: true, force: true });
rmSync(join(root, 'dist/fast'), { recursive: true, force: true });
await build({
  ...common,
  entryPoints: { prismctl: 'src/cli/main.ts', complete: 'src/cli/completion-main.ts', ...commands },
  outdir: 'dist',
});

// oclif's modules that the fast bundle replaces: its errors (the parser's usage errors send the line
// back to oclif, see src/cli/lite/shims/oclif-errors.cjs), and its logger and help (debug output
// and error text only). Anything else of oclif beyond its flags, args and parser fails the build.
// Real path: esbuild names modules by it, and node_modules may be a symlink (a git worktree's).
const oclifLib = realpathSync(join(root, 'node_modules/@oclif/core/lib'));
const SHIMS = {
  'errors/index.js': 'src/cli/lite/shims/oclif-errors.cjs',
  'parser/errors.js': 'src/cli/lite/shims/oclif-errors.cjs',
  'logger.js': 'src/cli/lite/shims/oclif-quiet.cjs',
  'help/index.js': 'src/cli/lite/shims/oclif-quiet.cjs',
  'parser/help.js': 'src/cli/lite/shims/oclif-quiet.cjs',
};
const ALLOWED = /^(flags|args|cache|parser\/(index|parse|validate)|util\/(util|fs))\.js$|^package\.json$/;
const oclifLite = {
  name: 'oclif-lite',
  setup(build) {
    build.onResolve({ filter: /^@oclif\/core$/ }, () => ({ path: join(root, 'src/cli/lite/oclif-core.ts') }));
    build.onResolve({ filter: /^\./ }, ({ path, importer }) => {
      if (!importer.startsWith(oclifLib)) return undefined;
      const target = resolve(dirname(importer), path);
      for (const candidate of [`${target}.js`, join(target, 'index.js'), target]) {
        const shim = SHIMS[relative(oclifLib, candidate)];
        if (shim) return { path: join(root, shim) };
      }
      return undefined;
    });
  },
};
const fast = await build({
  ...common,
  entryPoints: { main: 'src/cli/lite/run.ts', ...commands },
  outdir: 'dist/fast',
  plugins: [oclifLite],
  metafile: true,
});
const strays = Object.keys(fast.metafile.inputs)
  .filter((input) => resolve(root, input).startsWith(oclifLib))
  .map((input) => relative(oclifLib, resolve(root, input)))
  .filter((file) => !ALLOWED.test(file));
if (strays.length > 0) {
  throw new Error(`the fast-start bundle took oclif modules it must not load: ${strays.join(', ')}`);
}

// The fast path's command index (src/cli/lite/run.ts): ids as oclif spells them.
writeFileSync(
  join(root, 'dist/fast/commands.json'),
  JSON.stringify(Object.keys(commands).map((entry) => entry.slice('commands/'.length).replaceAll('/', ':'))),
);

// structural.ts loads the precompiled validator next to itself (scripts/build-validator.js).
for (const chunks of ['dist/chunks', 'dist/fast/chunks']) {
  mkdirSync(join(root, chunks), { recursive: true });
  copyFileSync(
    join(root, 'dist/config/namespace-validator.cjs'),
    join(root, chunks, 'namespace-validator.cjs'),
  );
}
