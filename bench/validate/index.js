#!/usr/bin/env node
// Benchmark (not a test): namespace validation throughput in one process, and the wall time of a
// one-file `prismctl namespace validate` from process start to exit. Run after `npm run build`:
//   node bench/validate/index.js [--files 1000] [--runs 5]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateFiles } from './generate.js';

const root = resolve(fileURLToPath(import.meta.url), '../../..');
const { values } = parseArgs({
  options: { files: { type: 'string', default: '1000' }, runs: { type: 'string', default: '5' } },
});
const fileCount = Number(values.files);
const runs = Number(values.runs);

const { validatePaths } = await import(join(root, 'dist/config/validate.js'));

const dir = mkdtempSync(join(tmpdir(), 'prism-bench-validate-'));
try {
  generateFiles(dir, fileCount);

  const rates = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const { report } = await validatePaths([dir]);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (!report.valid || report.files !== fileCount)
      throw new Error(`generated files did not validate: ${JSON.stringify(report.diagnostics.slice(0, 3))}`);
    rates.push(fileCount / seconds);
  }

  const one = join(dir, 'ns-00000.yaml');
  const walls = [];
  for (let i = 0; i < runs + 1; i++) {
    const start = process.hrtime.bigint();
    const child = spawnSync(process.execPath, [join(root, 'bin/run.js'), 'namespace', 'validate', one], {
      encoding: 'utf8',
    });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (child.status !== 0) throw new Error(`prismctl exited ${child.status}: ${child.stderr}`);
    if (i > 0) walls.push(ms); // the first run warms the file system cache
  }

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `in-process validate of ${fileCount} files: median ${median(rates).toFixed(0)} files/s, best ${Math.max(...rates).toFixed(0)} files/s (goal >= 2000)`,
  );
  console.log(
    `prismctl namespace validate <one file>: median ${median(walls).toFixed(0)} ms, min ${Math.min(...walls).toFixed(0)} ms over ${walls.length} runs (goal < 400 ms)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
