/**
 * Replacing one of kafkajs's own modules (record-encoder.ts, crc32c.ts, record-decoder.ts).
 *
 * kafkajs's modules take each other at load time (`const Record = require(...)`), so a function
 * they captured cannot be patched afterwards. A module kafkajs loads lazily can be replaced before
 * it is first loaded: an entry in Node's CommonJS cache under its file name is what every later
 * `require` of it returns. kafkajs is pinned exactly (package.json); with another version, or a
 * module already loaded, nothing is replaced and kafkajs keeps its own.
 */
import { createRequire, Module } from 'node:module';

const KAFKAJS_VERSION = '2.2.4';

/** What each path's first replacement did; later calls answer the same. */
const outcomes = new Map<string, boolean>();

/**
 * Puts `exports` in place of kafkajs's module at `path` (from the package root), once per process;
 * true when it took.
 */
export function replaceKafkajsModule(path: string, exports: unknown): boolean {
  let took = outcomes.get(path);
  if (took === undefined) {
    const require = createRequire(import.meta.url);
    const filename = require.resolve(`kafkajs/${path}`);
    const { version } = require('kafkajs/package.json') as { version: string };
    took = version === KAFKAJS_VERSION && !require.cache[filename];
    if (took) {
      const module = new Module(filename);
      module.filename = filename;
      module.exports = exports;
      module.loaded = true;
      require.cache[filename] = module;
    }
    outcomes.set(path, took);
  }
  return took;
}
