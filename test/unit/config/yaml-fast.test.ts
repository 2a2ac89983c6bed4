import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fastLoadAll } from '../../../src/config/yaml-fast.js';
import {
  MAX_DEPTH,
  parseYamlDocuments,
  parseYamlWithPositions,
  type ParsedYaml,
} from '../../../src/config/yaml-loader.js';
import { REPO_ROOT } from '../../support/cli.js';

/**
 * The config loader reads values with js-yaml when it can and with `yaml` otherwise. Whatever the
 * path, a source means the same: the same values, the same diagnostics at the same positions.
 * These are the cases where the two libraries differ on their own.
 */

const source = (text: string) => ({ file: 'c.yaml', text });

/** What the loader gives, without the position lookups. */
function loaded(parsed: ParsedYaml) {
  return { values: parsed.documents.map((d) => d.value), diagnostics: parsed.diagnostics };
}

/** The loader's answer for `text`, after checking that the `yaml`-only path gives the same one. */
function load(text: string) {
  const answer = loaded(parseYamlDocuments(source(text)));
  expect(answer).toEqual(loaded(parseYamlWithPositions(source(text))));
  return answer;
}

const values = (text: string) => load(text).values;
const rules = (text: string) => load(text).diagnostics.map((d) => [d.rule, d.line, d.column]);

describe('plain scalars mean what the YAML 1.2 core schema says, on either path', () => {
  it.each([
    [
      'YAML 1.1 booleans stay strings',
      'a: [yes, no, on, off, y, n, Yes]',
      ['yes', 'no', 'on', 'off', 'y', 'n', 'Yes'],
    ],
    [
      'core booleans',
      'a: [true, True, TRUE, false, False, FALSE, tRue]',
      [true, true, true, false, false, false, 'tRue'],
    ],
    ['core nulls', "a: [~, null, Null, NULL, nUll, '']", [null, null, null, null, 'nUll', '']],
    [
      '0o octal is an integer, 0O and a sign are not',
      'a: [0o17, 0O17, -0o7, 017, 08]',
      [15, '0O17', '-0o7', 17, 8],
    ],
    [
      '0x hexadecimal without a sign',
      'a: [0x1F, 0x1f, -0x1F, +0x1F, 0X1F]',
      [31, 31, '-0x1F', '+0x1F', '0X1F'],
    ],
    [
      'binary and underscores are strings',
      'a: [0b101, -0b1, 1_000, 1_000.5]',
      ['0b101', '-0b1', '1_000', '1_000.5'],
    ],
    [
      'big integers lose precision as numbers',
      'a: [12345678901234567890, 0xFFFFFFFFFFFFFFFFFFFF]',
      [12345678901234567000, 1.2089258196146292e24],
    ],
    [
      'floats with a leading dot and a sign',
      'a: [.5, -.5, +.5, -.5e3, 1., 1e3, 1.5E-3]',
      [0.5, -0.5, 0.5, -500, 1, 1000, 0.0015],
    ],
    [
      'floats too large for a double',
      'a: [1e999, -1e999]',
      [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
    ],
    [
      'infinity and not-a-number',
      'a: [.inf, -.Inf, +.INF, .nan, .NaN, .NAN, .Nan]',
      [Infinity, -Infinity, Infinity, NaN, NaN, NaN, '.Nan'],
    ],
    [
      'timestamps are strings',
      'a: [2001-12-14t21:59:43.10-05:00, 2002-12-14]',
      ['2001-12-14t21:59:43.10-05:00', '2002-12-14'],
    ],
  ])('%s', (_what, text, expected) => {
    expect(fastLoadAll(text, MAX_DEPTH)).toBeDefined(); // js-yaml reads these itself
    expect(values(text)).toEqual([{ a: expected }]);
  });

  it('reads a %YAML 1.1 document as YAML 1.1, where yes is true', () => {
    expect(values('%YAML 1.1\n---\na: yes\n')).toEqual([{ a: true }]);
  });
});

describe('keys', () => {
  it('refuses a duplicate key at the second one', () => {
    expect(rules('a: 1\nb: 2\na: 3\n')).toEqual([['E_YAML_DUPLICATE_KEY', 3, 1]]);
  });

  it('refuses keys that are the same value written differently', () => {
    expect(rules('0x1: a\n1: b\n')).toEqual([['E_YAML_DUPLICATE_KEY', 2, 1]]);
    expect(rules("'a': 1\na: 2\n")).toEqual([['E_YAML_DUPLICATE_KEY', 2, 1]]);
  });

  it('keeps a string key and a boolean key of the same spelling apart, the last one winning', () => {
    expect(values('true: a\n"true": b\n')).toEqual([{ true: 'b' }]);
  });

  it('reads a null key as the empty string', () => {
    expect(values('~: a\nnull: b\n')).toEqual([]);
    expect(rules('~: a\nnull: b\n')).toEqual([['E_YAML_DUPLICATE_KEY', 2, 1]]);
    expect(values('~: a\nb: 1\n')).toEqual([{ '': 'a', b: 1 }]);
  });

  it('stringifies a collection used as a key the way yaml does', () => {
    expect(values('[a, b]: c\n')).toEqual([{ '[ a, b ]': 'c' }]);
    expect(values('? [a]\n: b\n')).toEqual([{ '[ a ]': 'b' }]);
    expect(values('{a: 1}: c\n')).toEqual([{ '{ a: 1 }': 'c' }]);
  });

  it('treats << as an ordinary key: the core schema has no merge keys', () => {
    expect(fastLoadAll('<<: {a: 1}\nb: 2\n', MAX_DEPTH)).toBeDefined();
    expect(values('<<: {a: 1}\nb: 2\n')).toEqual([{ '<<': { a: 1 }, b: 2 }]);
  });

  it('keeps __proto__ as an own key without touching the prototype', () => {
    const [value] = values('__proto__: {polluted: 1}\n') as [Record<string, unknown>];
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('syntax js-yaml accepts and yaml refuses', () => {
  it.each([
    ['a flow sequence continued on a less indented line', 'a: [\nb]\n', 2, 1],
    ['a quoted scalar continued on an unindented line', 'a:\n  b: "one\ntwo"\n', 2, 10],
    ['a comment glued to a quoted scalar', 'a: "x"#c\n', 1, 7],
    ['a comment glued to a flow sequence', 'a: [x]#c\n', 1, 7],
    ['a tab indenting a document', '\tx\n', 1, 1],
  ])('refuses %s', (_what, text, line, column) => {
    expect(rules(text)[0]).toEqual(['E_YAML_SYNTAX', line, column]);
  });

  it('nests an empty item of a compact sequence where it is written', () => {
    // js-yaml puts {key: v} inside the inner list.
    expect(values('n:\n  - - a\n    -\n  - key: v\n')).toEqual([{ n: [['a', null], { key: 'v' }] }]);
  });

  it('reads a tag as yaml does', () => {
    expect(values('a: !!str 12\nb: !custom 12\n')).toEqual([{ a: '12', b: '12' }]);
  });
});

describe('scalars both read alike', () => {
  it('reads block scalars with every chomping and indentation indicator', () => {
    const text =
      'x: |\n  l1\n   l2\n\n  l3\n\n\ny: >\n  f\n  t\n\n   m\n  e\nz: |-\n  s\n\nw: |+\n  k\n\nv: >2\n   i\n';
    expect(fastLoadAll(text, MAX_DEPTH)).toBeDefined();
    expect(values(text)).toEqual([
      { x: 'l1\n l2\n\nl3\n', y: 'f t\n\n m\ne\n', z: 's', w: 'k\n\n', v: ' i\n' },
    ]);
  });

  it('reads escapes, folded quoted scalars and Windows line ends', () => {
    const text = 'a: "t\\tA\\x41\\u00e9\\U0001F600\\N\\_\\/"\r\nb: \'it\'\'s\'\r\nc: "one\r\n  two"\r\n';
    expect(values(text)).toEqual([{ a: 't\tAAé😀\u0085\u00a0/', b: "it's", c: 'one two' }]);
  });

  it('refuses an unknown escape', () => {
    expect(rules('a: "bad \\q"\n')).toEqual([['E_YAML_SYNTAX', 1, 9]]);
  });
});

describe('documents', () => {
  it('reads several documents, skipping empty ones', () => {
    expect(values('a: 1\n...\n---\nb: 2\n---\n# nothing\n')).toEqual([{ a: 1 }, { b: 2 }]);
  });

  it('gives no document for a file of comments', () => {
    expect(load('# only a comment\n')).toEqual({ values: [], diagnostics: [] });
  });

  it('refuses nesting deeper than the limit on either path', () => {
    const nested = (levels: number) => 'a: ' + '['.repeat(levels) + ']'.repeat(levels) + '\n';
    expect(values(nested(MAX_DEPTH - 1))).toHaveLength(1);
    expect(rules(nested(MAX_DEPTH))).toEqual([['E_YAML_DEPTH', 1, 1]]);
  });
});

describe('positions of a file read by the fast path', () => {
  it('points at the key and the value asked for', () => {
    const parsed = parseYamlDocuments(source('a: 1\n---\nb:\n  - x\n  - y: 2\n'));
    expect(parsed.documents).toHaveLength(2);
    expect(parsed.documents[1]!.locate(['b', 1, 'y'], true)).toEqual({ line: 5, column: 5 });
    expect(parsed.documents[1]!.locate(['b', 1, 'y'], false)).toEqual({ line: 5, column: 8 });
    expect(parsed.documents[0]!.locate(['a'], false)).toEqual({ line: 1, column: 4 });
  });
});

/** Every YAML file of the repository: the fast path reads each to what yaml reads, or leaves it. */
describe('the repository’s own YAML files', () => {
  const files = ['examples', 'templates', 'test/golden', 'test/fixtures'].flatMap((d) =>
    yamlFiles(join(REPO_ROOT, d)),
  );

  it('reads every file to the values yaml reads', () => {
    expect(files.length).toBeGreaterThan(20);
    let fast = 0;
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const got = fastLoadAll(text, MAX_DEPTH);
      if (got === undefined) continue;
      fast++;
      const expected = parseYamlWithPositions({ file, text });
      expect(expected.diagnostics, file).toEqual([]);
      expect(got, file).toEqual(expected.documents.map((d) => d.value));
    }
    expect(fast).toBeGreaterThan(files.length / 2);
  });
});

/**
 * Seeded mutations of valid files (inserted, deleted and replaced characters): whenever the fast
 * path accepts a mutant, yaml accepts it too and reads the same values.
 */
describe('mutated files', () => {
  const namespace = readFileSync(join(REPO_ROOT, 'examples/namespaces/orders-secure.yaml'), 'utf8');
  const catalog = [
    'backends:',
    '  redis:',
    '    url: "redis://127.0.0.1:6379/0"',
    '    description: >',
    "      A folded description, it's",
    '      long',
    "    tags: [a, b, 'c d']",
    '    limits: {max: 10, min: -1.5e3, mask: 0x1F, mode: 0o644}',
    '  pg:',
    '    note: |',
    '      literal',
    '        indented',
    '    list:',
    '      - one',
    '      - two: 2',
    '        three: .5',
    '      - "quoted \\"esc\\""',
    '---',
    'second: [yes, ~, 1e3]',
    '',
  ].join('\n');

  it.each([
    ['a namespace', namespace, 11],
    ['a catalog with block scalars and two documents', catalog, 29],
  ])(
    '%s',
    (_what, base, seed) => {
      const random = lcg(seed);
      const alphabet = [
        ' ',
        '\n',
        ':',
        '-',
        '#',
        '"',
        "'",
        '[',
        ']',
        '{',
        '}',
        ',',
        '\t',
        '  ',
        'x',
        '|',
        '>',
        '\\',
        '0',
        '.',
        '~',
        '?',
      ];
      let fast = 0;
      for (let i = 0; i < 600; i++) {
        let text = base;
        for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits--) {
          const at = Math.floor(random() * text.length);
          const op = random();
          const c = alphabet[Math.floor(random() * alphabet.length)]!;
          text =
            op < 0.4
              ? text.slice(0, at) + c + text.slice(at)
              : op < 0.7
                ? text.slice(0, at) + text.slice(at + 1)
                : text.slice(0, at) + c + text.slice(at + 1);
        }
        const got = fastLoadAll(text, MAX_DEPTH);
        if (got === undefined) continue;
        fast++;
        const expected = parseYamlWithPositions(source(text));
        expect({ text, diagnostics: expected.diagnostics }).toEqual({ text, diagnostics: [] });
        expect({ text, values: got }).toEqual({ text, values: expected.documents.map((d) => d.value) });
      }
      expect(fast).toBeGreaterThan(100); // the fast path is exercised, not merely avoided
    },
    60_000,
  );
});

function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}
