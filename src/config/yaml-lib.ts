import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

const require = createRequire(import.meta.url);
let lib: typeof Yaml | undefined;

/**
 * The `yaml` package, loaded on first use. It is ~230 modules; a valid file is read by js-yaml
 * (yaml-fast.ts) and never needs it, so `namespace validate` starts faster without it.
 */
export function yamlLib(): typeof Yaml {
  lib ??= require('yaml') as typeof Yaml;
  return lib;
}
