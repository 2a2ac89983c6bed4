import type { Document, LineCounter, Node } from 'yaml';
import { yamlLib } from './yaml-lib.js';
import { fastLoadAll } from './yaml-fast.js';
import type { Diagnostic } from './diagnostics.js';
import { toPointer } from './diagnostics.js';
import type { SourceText } from './sources.js';

/** Alias expansions allowed per document; more is an alias bomb, not a namespace. */
export const MAX_ALIAS_COUNT = 100;
/** Nesting deeper than this is refused before any recursive processing. */
export const MAX_DEPTH = 64;

export type Path = ReadonlyArray<string | number>;

export interface Position {
  line: number;
  column: number;
}

/** One namespace as found in a source file, with a way back from any path to its position. */
export interface NamespaceDocument {
  file: string;
  /** Plain JSON-compatible value of the namespace mapping. */
  value: Record<string, unknown>;
  /** Where the value at `path` (relative to the namespace) starts; `key: true` points at its key. */
  locate(path: Path, options?: { key?: boolean }): Position;
  /** JSON pointer of `path` relative to the file's document, for diagnostics. */
  pointer(path: Path): string;
}

/** A finding located at `at` (its key when `key`) in a namespace document. */
export function diagnosticAt(
  doc: NamespaceDocument,
  severity: Diagnostic['severity'],
  rule: string,
  message: string,
  hint: string,
  at: Path,
  key = false,
): Diagnostic {
  return { severity, rule, message, file: doc.file, ...doc.locate(at, { key }), path: doc.pointer(at), hint };
}

export interface ParseResult {
  namespaces: NamespaceDocument[];
  diagnostics: Diagnostic[];
}

/** Splits a source into namespace documents: one per YAML document, or one per `namespaces:` item. */
export function parseNamespaceSource(source: SourceText): ParseResult {
  const parsed = parseYamlDocuments(source);
  return splitDocuments(source.file, parsed.documents, parsed.diagnostics);
}

/** One non-empty YAML document of a source: its plain value and a way back to positions. */
export interface LoadedDocument {
  value: unknown;
  locate: (path: Path, key: boolean) => Position;
}

export interface ParsedYaml {
  documents: LoadedDocument[];
  diagnostics: Diagnostic[];
}

/**
 * Parses every document of a source: the one YAML parser of every config file. Syntax errors and
 * duplicate keys are reported with their positions, nesting is bounded by MAX_DEPTH and alias
 * expansion by MAX_ALIAS_COUNT; empty documents (only `---` and comments) are skipped.
 *
 * Two libraries, one meaning. The `yaml` package is the authority (values, positions, errors),
 * but it is slow: on a generated 45-line namespace, ~2.9 ms per file against ~0.34 ms for js-yaml
 * (2026-12-03, busy 2-core machine), its lexer alone twice js-yaml's whole load, which made
 * `namespace validate` 4x slower (bench/RESULTS.md). So values come from js-yaml with the YAML 1.2
 * core schema of `yaml` (yaml-fast.ts) when the source avoids every construct where the two may
 * differ, and positions come from `yaml` only when a diagnostic asks for one. Any other source,
 * and any source js-yaml refuses, is parsed by `yaml` alone (parseYamlWithPositions).
 */
export function parseYamlDocuments(source: SourceText): ParsedYaml {
  const values = fastLoadAll(source.text, MAX_DEPTH);
  if (!values) return parseYamlWithPositions(source);
  let positions: ReturnType<typeof positionIndex> | undefined;
  const documents = values.map((value, index) => ({
    value,
    locate: (path: Path, key: boolean): Position => {
      positions ??= positionIndex(source.text);
      const doc = positions.docs[index];
      return doc ? locateIn(doc, path, key, positions.at) : { line: 1, column: 1 };
    },
  }));
  return { documents, diagnostics: [] };
}

/** Non-empty `yaml` documents of a text the fast path read, with a line counter: positions only. */
function positionIndex(text: string): { docs: Document[]; at: (offset: number) => Position } {
  const lineCounter = new (yamlLib().LineCounter)();
  const all = yamlLib().parseAllDocuments(text, { lineCounter });
  const docs = (Array.isArray(all) ? all : [all]).filter(
    (d) => d.contents !== null && !isEmptyNode(d.contents),
  );
  return { docs, at: atFor(lineCounter) };
}

/**
 * parseYamlDocuments with the `yaml` package alone: the authority the fast path must agree with,
 * exported for the tests that hold it to that.
 */
export function parseYamlWithPositions(source: SourceText): ParsedYaml {
  const lineCounter = new (yamlLib().LineCounter)();
  const all = yamlLib().parseAllDocuments(source.text, {
    lineCounter,
    uniqueKeys: true,
    prettyErrors: false,
  });
  const at = atFor(lineCounter);
  const diagnostics: Diagnostic[] = [];
  const docs: LoadedDocument[] = [];
  for (const doc of Array.isArray(all) ? all : [all]) {
    if (doc.errors.length > 0) {
      let exhausted = false;
      for (const e of doc.errors) {
        if (e.code === 'RESOURCE_EXHAUSTION') {
          // The yaml composer ran out of stack: nesting far beyond MAX_DEPTH. Report it once, where
          // the document starts, as for nesting that parsed but is too deep.
          if (!exhausted) {
            const where = at(doc.contents?.range[0] ?? e.pos[0]);
            diagnostics.push(
              fileError(
                source.file,
                'E_YAML_DEPTH',
                `nesting is deeper than ${MAX_DEPTH} levels`,
                where,
                'flatten the document',
              ),
            );
          }
          exhausted = true;
          continue;
        }
        const rule = e.code === 'DUPLICATE_KEY' ? 'E_YAML_DUPLICATE_KEY' : 'E_YAML_SYNTAX';
        const message = e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? e.code;
        diagnostics.push(
          fileError(source.file, rule, message, at(e.pos[0]), 'fix the YAML syntax at this position'),
        );
      }
      continue;
    }
    if (doc.contents === null || isEmptyNode(doc.contents)) continue;
    const docStart = at(doc.contents.range[0]);
    if (depthExceeds(doc.contents, MAX_DEPTH)) {
      diagnostics.push(
        fileError(
          source.file,
          'E_YAML_DEPTH',
          `nesting is deeper than ${MAX_DEPTH} levels`,
          docStart,
          'flatten the document',
        ),
      );
      continue;
    }
    try {
      docs.push({
        value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }),
        locate: (path, key) => locateIn(doc, path, key, at),
      });
    } catch (err) {
      const message =
        err instanceof ReferenceError && /excessive alias count/i.test(err.message)
          ? `aliases expand to more than ${MAX_ALIAS_COUNT} nodes (possible alias bomb)`
          : err instanceof ReferenceError && /unresolved alias/i.test(err.message)
            ? 'an alias refers to an anchor that is not defined before it'
            : `cannot convert document: ${(err as Error).message}`;
      const hint = /anchor/.test(message)
        ? 'define the anchor (&name) before the alias (*name)'
        : 'remove the repeated aliases';
      diagnostics.push(fileError(source.file, 'E_YAML_ALIAS', message, docStart, hint));
    }
  }
  return { documents: docs, diagnostics };
}

function atFor(lineCounter: LineCounter): (offset: number) => Position {
  return (offset) => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
}

function splitDocuments(
  file: string,
  docs: readonly LoadedDocument[],
  diagnostics: Diagnostic[],
): ParseResult {
  const result: ParseResult = { namespaces: [], diagnostics };
  for (const doc of docs) {
    const value = doc.value;
    if (!isPlainObject(value)) {
      result.diagnostics.push(
        fileError(
          file,
          'E_SCHEMA_TYPE',
          `a namespace document must be a mapping, found ${kindOf(value)}`,
          doc.locate([], false),
          'start the document with `namespace: <name>`',
        ),
      );
      continue;
    }
    if ('namespaces' in value && !('namespace' in value)) {
      const list = value.namespaces;
      if (Array.isArray(list) && list.length === 0 && Object.keys(value).length === 1) {
        result.diagnostics.push({
          ...fileError(
            file,
            'E_SCHEMA_MIN_ITEMS',
            '`namespaces:` needs at least 1 item',
            doc.locate(['namespaces'], false),
            'add an item',
          ),
          path: '/namespaces',
        });
        continue;
      }
      if (!Array.isArray(list) || Object.keys(value).length !== 1) {
        result.diagnostics.push({
          ...fileError(
            file,
            'E_SCHEMA_TYPE',
            '`namespaces:` must be the only key and hold a list of namespaces',
            doc.locate(['namespaces'], false),
            'write `namespaces:` followed by `- namespace: ...` items',
          ),
          path: '/namespaces',
        });
        continue;
      }
      list.forEach((item, index) => {
        const base = ['namespaces', index];
        if (!isPlainObject(item)) {
          result.diagnostics.push({
            ...fileError(
              file,
              'E_SCHEMA_TYPE',
              `namespaces[${index}] must be a mapping, found ${kindOf(item)}`,
              doc.locate(base, false),
              'write `- namespace: <name>`',
            ),
            path: toPointer(base),
          });
          return;
        }
        result.namespaces.push(makeDocument(file, doc, base, item));
      });
    } else {
      result.namespaces.push(makeDocument(file, doc, [], value));
    }
  }
  if (docs.length === 0 && result.diagnostics.length === 0) {
    result.diagnostics.push(
      fileError(
        file,
        'E_EMPTY_FILE',
        'file holds no namespace',
        { line: 1, column: 1 },
        'add `namespace: <name>` or remove the file',
      ),
    );
  }
  return result;
}

function fileError(file: string, rule: string, message: string, pos: Position, hint: string): Diagnostic {
  return { severity: 'error', rule, message, file, ...pos, path: '', hint };
}

function makeDocument(
  file: string,
  doc: LoadedDocument,
  base: Path,
  value: Record<string, unknown>,
): NamespaceDocument {
  return {
    file,
    value,
    locate: (path, options) => doc.locate([...base, ...path], options?.key ?? false),
    pointer: (path) => toPointer([...base, ...path]),
  };
}

/** Position of the deepest existing node along `path`; for `key`, the key of the last step. */
function locateIn(doc: Document, path: Path, key: boolean, at: (offset: number) => Position): Position {
  let node: unknown = doc.contents;
  let position = at(rangeStart(node));
  for (const [index, step] of path.entries()) {
    const last = index === path.length - 1;
    if (yamlLib().isMap(node)) {
      const pair = node.items.find((p) => yamlLib().isPair(p) && keyText(p.key) === String(step));
      if (!pair) break;
      if ((last && key) || pair.value === null) return at(rangeStart(pair.key));
      node = pair.value;
    } else if (yamlLib().isSeq(node) && typeof step === 'number') {
      const item = node.items[step];
      if (item === undefined) break;
      node = item;
    } else {
      break;
    }
    position = at(rangeStart(node));
  }
  return position;
}

function keyText(key: unknown): string | undefined {
  if (yamlLib().isScalar(key)) return String(key.value);
  return undefined;
}

function rangeStart(node: unknown): number {
  const range = (node as Node | null)?.range;
  return range ? range[0] : 0;
}

/** Iterative, so that a hostile document cannot overflow the stack here. */
function depthExceeds(root: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (depth > limit) return true;
    if (yamlLib().isMap(node)) {
      for (const pair of node.items) stack.push([pair.value, depth + 1]);
    } else if (yamlLib().isSeq(node)) {
      for (const item of node.items) stack.push([item, depth + 1]);
    }
  }
  return false;
}

/** A document that is only `---` (and comments): nothing was written, so there is nothing to check. */
function isEmptyNode(node: Node): boolean {
  return yamlLib().isScalar(node) && node.value === null && !node.source && !node.tag && !node.anchor;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return `a ${typeof value}`;
}
