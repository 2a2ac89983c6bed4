import { FAILSAFE_SCHEMA, Type, loadAll, type State } from 'js-yaml';

/**
 * The fast path of the config loader (yaml-loader.ts): the values of a source, read by js-yaml,
 * or `undefined` whenever js-yaml and the `yaml` package might not agree, so that the caller
 * parses the source with `yaml` instead. `yaml` stays the authority: this path only accepts
 * sources that `yaml` reads to the same values without an error.
 *
 * Where the two libraries differ (each case is a test in test/unit/config/yaml-fast.test.ts):
 * - plain scalar typing: js-yaml's CORE_SCHEMA also reads 0b101, -0x1F, +0o7 as integers, and
 *   `-.5`, `1e999` as strings. The schema below resolves plain scalars with the YAML 1.2 core
 *   schema tests of `yaml` (yaml/dist/schema/core), so `yes`, `0b101` stay strings and `0o17` is 15;
 * - a null key (`~: x`) is "null" in js-yaml and "" in `yaml`; a collection key (`[a, b]: c`,
 *   `? [a]`) is stringified differently; `%YAML 1.1` switches `yaml` to YAML 1.1 (`yes` is true);
 * - js-yaml accepts what `yaml` refuses: flow collections and quoted or plain scalars that continue
 *   on a less indented line, `"x"#comment` and `[a]#comment`, a tab in the indentation, and it nests
 *   an empty `-` item of a compact sequence wrongly;
 * - tags, anchors and aliases: `yaml` bounds alias expansion and resolves tags its own way.
 * Sources with any of these (found by a conservative scan of the text, or while js-yaml reads it)
 * take the `yaml` path. Duplicate keys make js-yaml throw, which also falls back to `yaml`.
 */

/**
 * Text that may hold one of the constructs above: a directive, a tag/anchor/alias at the start of a
 * token, an explicit key, a flow collection used as a key, a comment glued to a quoted scalar or a
 * flow collection, a tab in the indentation, an empty block sequence item. It may also match inside
 * a quoted string: then the source is merely parsed by `yaml`.
 */
const MAYBE_DIFFERENT =
  /^%|^ *\t|(?:^|[\s,[\]{}:?-])[&*!]|(?:^|[\s,[{])\?(?:[\s,[\]{}]|$)|[\]}][ \t]*:|["'\]}]#|(?:^|[ \t])-[ \t]*(?:#.*)?$/m;

// The YAML 1.2 core schema's tests, exactly as the `yaml` package resolves plain scalars.
const NULL = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT_OCT = /^0o[0-7]+$/;
const INT = /^[-+]?[0-9]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

/** A plain scalar can only be a number if it starts with a digit, a sign or a dot. */
function numberLike(data: string): boolean {
  const c = data.charCodeAt(0);
  return (c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46;
}

const CORE_1_2 = FAILSAFE_SCHEMA.extend({
  implicit: [
    new Type('tag:yaml.org,2002:null', {
      kind: 'scalar',
      resolve: (data: string) => NULL.test(data),
      construct: () => null,
    }),
    new Type('tag:yaml.org,2002:bool', {
      kind: 'scalar',
      resolve: (data: string) => BOOL.test(data),
      construct: (data: string) => data[0] === 't' || data[0] === 'T',
    }),
    new Type('tag:yaml.org,2002:int', {
      kind: 'scalar',
      resolve: (data: string) =>
        numberLike(data) && (INT.test(data) || INT_OCT.test(data) || INT_HEX.test(data)),
      construct: (data: string) =>
        INT_OCT.test(data)
          ? parseInt(data.slice(2), 8)
          : INT_HEX.test(data)
            ? parseInt(data.slice(2), 16)
            : parseInt(data, 10),
    }),
    new Type('tag:yaml.org,2002:float', {
      kind: 'scalar',
      resolve: (data: string) =>
        numberLike(data) && (FLOAT_NAN.test(data) || FLOAT_EXP.test(data) || FLOAT.test(data)),
      construct: (data: string) =>
        FLOAT_NAN.test(data)
          ? data.slice(-3).toLowerCase() === 'nan'
            ? NaN
            : data[0] === '-'
              ? Number.NEGATIVE_INFINITY
              : Number.POSITIVE_INFINITY
          : parseFloat(data),
    }),
  ],
});

/**
 * The values of every document of `text`, or `undefined` when `yaml` must read it: js-yaml
 * refused it, it may hold a construct where the libraries differ, it has no document or an empty
 * one (`yaml` skips or reports those), or it nests deeper than `maxDepth`.
 */
export function fastLoadAll(text: string, maxDepth: number): unknown[] | undefined {
  if (MAYBE_DIFFERENT.test(text)) return undefined;
  const opened: number[] = [];
  let multiline = false;
  const listener = (event: 'open' | 'close', state: State): void => {
    if (event === 'open') opened.push(state.position);
    else if (!multiline) multiline = continuesOnNextLine(text, opened.pop() ?? 0, state);
  };
  let values: unknown[];
  try {
    values = loadAll(text, null, { schema: CORE_1_2, listener });
  } catch {
    return undefined;
  }
  if (multiline || values.length === 0) return undefined;
  for (const value of values) {
    if (value === null || value === undefined || !plainAndShallow(value, maxDepth)) return undefined;
  }
  return values;
}

/**
 * Whether the node js-yaml just read is a flow node (flow collection, quoted or plain scalar) that
 * spans lines. Block collections and block scalars (`|`, `>`) may; the others are read by `yaml`,
 * which checks their indentation where js-yaml does not.
 */
function continuesOnNextLine(text: string, from: number, state: State): boolean {
  let start = from;
  let end = state.position;
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  const newline = text.indexOf('\n', start);
  if (newline === -1 || newline >= end) return false;
  const first = text[start];
  if (state.kind === 'scalar') return first !== '|' && first !== '>';
  if (state.kind === 'sequence' || state.kind === 'mapping') return first === '[' || first === '{';
  return true;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

/** No key read from a null (`~:`, `null:`), and no deeper than `limit`; iterative for hostile input. */
function plainAndShallow(root: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (depth > limit) return false;
    if (typeof value !== 'object' || value === null) continue;
    if (!Array.isArray(value) && Object.prototype.hasOwnProperty.call(value, 'null')) return false;
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return true;
}
