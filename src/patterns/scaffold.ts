/**
 * `prismctl pattern init`: a pattern package from templates/pattern/ (docs/sdk.md). Every file is
 * copied with `{{name}}`, `{{type}}`, `{{prismctlVersion}}` and `{{sdkVersion}}` filled in; an
 * existing directory that is not empty is refused unless forced.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { PrismError } from '../errors.js';
import { PACKAGE_ROOT } from '../package-root.js';
import { SDK_VERSION } from '../sdk/version.js';

const TYPE = /^(?!.*--)[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
const PACKAGE_NAME = /^(@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;

export interface PatternInit {
  /** npm package name, e.g. `rate-limiter` or `@acme/prism-rate-limiter`. */
  name: string;
  /** Pattern type; default: the package name without its scope and a `prism-` prefix. */
  type?: string;
  /** Target directory; default: the package name without its scope. */
  dir?: string;
  force?: boolean;
}

export interface PatternInitResult {
  dir: string;
  type: string;
  files: string[];
}

function templateFiles(root: string): string[] {
  return readdirSync(root, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}

export function scaffoldPattern(init: PatternInit, cwd = process.cwd()): PatternInitResult {
  if (!PACKAGE_NAME.test(init.name))
    throw new PrismError('E_USAGE', `'${init.name}' is not an npm package name`, {
      hint: 'lower-case letters, digits and - . _ ~, optionally under a @scope/',
    });
  const bare = init.name.replace(/^@[^/]+\//, '');
  const type = init.type ?? bare.replace(/^prism-/, '');
  if (!TYPE.test(type))
    throw new PrismError('E_USAGE', `'${type}' is not a pattern type name`, {
      hint: 'pass --type with lower-case letters, digits and single dashes, e.g. --type rate-limited-kv',
    });
  const dir = join(cwd, init.dir ?? bare);
  if (existsSync(dir) && readdirSync(dir).length > 0 && !init.force)
    throw new PrismError('E_FILE_EXISTS', `${dir} exists and is not empty; nothing was written`, {
      hint: 'choose another --dir, or pass --force to write over the template files',
    });
  const root = join(PACKAGE_ROOT, 'templates', 'pattern');
  const prismctlVersion = (
    JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  const values: Record<string, string> = { name: init.name, type, prismctlVersion, sdkVersion: SDK_VERSION };
  const files = templateFiles(root);
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8').replace(
      /\{\{(name|type|prismctlVersion|sdkVersion)\}\}/g,
      (_, key: string) => values[key]!,
    );
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return { dir, type, files };
}
