#!/usr/bin/env node
// Regenerates src/gen (buf + protoc-gen-es) and schema/namespace.schema.json from proto/.
// With --check, generates into a temporary directory instead and fails when the committed files
// differ, so CI catches stale generated code. `buf lint` runs in both modes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = resolve(fileURLToPath(import.meta.url), '../..');
const check = process.argv.includes('--check');
const bin = join(root, 'node_modules/.bin');
const env = {
  ...process.env,
  PATH: `${bin}:${process.env.PATH}`,
  BUF_CACHE_DIR: join(root, 'node_modules/.cache/buf'),
};
const run = (cmd, args, cwd = root) => execFileSync(join(bin, cmd), args, { cwd, env, stdio: 'inherit' });

run('buf', ['lint'], join(root, 'proto'));

const genDir = join(root, 'src/gen');
const outDir = check ? mkdtempSync(join(tmpdir(), 'prism-gen-')) : genDir;
// proto/buf.gen.yaml is the one generation template; only its output directory is redirected.
const template = parse(readFileSync(join(root, 'proto/buf.gen.yaml'), 'utf8'));
for (const plugin of template.plugins) plugin.out = outDir;
run('buf', ['generate', '--template', JSON.stringify(template)], join(root, 'proto'));

const schemaFile = join(root, 'schema/namespace.schema.json');
if (!check) run('tsc', ['-p', 'tsconfig.build.json']);
const { renderNamespaceSchema } = await import(join(root, 'dist/config/json-schema.js'));
const schema = renderNamespaceSchema();

if (!check) {
  writeFileSync(schemaFile, schema);
  console.log('generated src/gen and schema/namespace.schema.json');
} else {
  const stale = [...diffTrees(outDir, genDir)];
  let committedSchema = '';
  try {
    committedSchema = readFileSync(schemaFile, 'utf8');
  } catch {
    // reported below as stale
  }
  if (committedSchema !== schema) stale.push(relative(root, schemaFile));
  rmSync(outDir, { recursive: true, force: true });
  if (stale.length > 0) {
    console.error(
      `generated files are stale: ${stale.join(', ')}\nrun \`npm run generate\` and commit the result`,
    );
    process.exit(1);
  }
  console.log('generated code is up to date; buf lint passed');
}

function* diffTrees(fresh, committed) {
  const list = (dir) =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(dir, join(e.parentPath, e.name)))
      .sort();
  let committedFiles = [];
  try {
    committedFiles = list(committed);
  } catch {
    // missing directory: everything is stale
  }
  const freshFiles = list(fresh);
  for (const file of new Set([...freshFiles, ...committedFiles])) {
    const a = readOrNull(join(fresh, file));
    const b = readOrNull(join(committed, file));
    if (!a || !b || !a.equals(b)) yield relative(root, join(committed, file));
  }
}

function readOrNull(file) {
  try {
    return readFileSync(file);
  } catch {
    return null;
  }
}
