import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildNamespaceSchema, renderNamespaceSchema } from '../../../src/config/json-schema.js';
import { validatePaths } from '../../../src/config/validate.js';

const EXAMPLES = 'examples/namespaces';

describe('namespace JSON Schema', () => {
  it('is committed exactly as generated from the proto descriptors', async () => {
    expect(await readFile('schema/namespace.schema.json', 'utf8')).toBe(renderNamespaceSchema());
  });

  it('accepts one namespace or a `namespaces:` list', () => {
    expect(buildNamespaceSchema()).toMatchObject({
      $schema: 'http://json-schema.org/draft-07/schema#',
      anyOf: [{ $ref: '#/definitions/NamespaceRequest' }, { $ref: '#/definitions/NamespaceList' }],
    });
  });

  it('requires namespace and team and rejects unknown keys', () => {
    const request = (buildNamespaceSchema().definitions as Record<string, Record<string, unknown>>)
      .NamespaceRequest!;
    expect(request.required).toEqual(['namespace', 'team']);
    expect(request.additionalProperties).toBe(false);
  });
});

describe('examples', () => {
  it('every example namespace validates with no diagnostics', async () => {
    const files = (await readdir(EXAMPLES)).filter((f) => /\.ya?ml$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    const { report, loaded } = await validatePaths([EXAMPLES]);
    expect(report.diagnostics).toEqual([]);
    expect(report).toMatchObject({ valid: true, files: files.length, errors: 0, warnings: 0 });
    expect(new Set(loaded.map((l) => l.document.file))).toEqual(new Set(files.map((f) => join(EXAMPLES, f))));
  });

  it('every example is still valid under --strict', async () => {
    expect((await validatePaths([EXAMPLES], { strict: true })).report.valid).toBe(true);
  });
});
