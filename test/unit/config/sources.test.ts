import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FILE_BYTES, readSources } from '../../../src/config/sources.js';
import { validatePaths } from '../../../src/config/validate.js';
import { toYaml, validNamespace } from '../../support/factories.js';

let dir: string;
const path = (...parts: string[]) => join(dir, ...parts);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prism-sources-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string | Buffer): Promise<string> {
  await mkdir(join(dir, name, '..'), { recursive: true });
  await writeFile(path(name), content);
  return path(name);
}

describe('reading files', () => {
  it('reads a file as UTF-8 text under the path it was given', async () => {
    const orders = await file('read/orders.yaml', toYaml(validNamespace()));
    expect(await readSources([orders])).toEqual({
      sources: [{ file: orders, text: toYaml(validNamespace()) }],
      diagnostics: [],
    });
  });

  it('drops a UTF-8 byte order mark', async () => {
    const orders = await file(
      'bom/orders.yaml',
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('namespace: orders\n')]),
    );
    const { sources } = await readSources([orders]);
    expect(sources[0]!.text).toBe('namespace: orders\n');
  });

  it('reports a missing file', async () => {
    const missing = path('does-not-exist.yaml');
    expect(await readSources([missing])).toEqual({
      sources: [],
      diagnostics: [
        {
          severity: 'error',
          rule: 'E_FILE_NOT_FOUND',
          message: 'no such file or directory',
          file: missing,
          line: 0,
          column: 0,
          path: '',
          hint: 'check the path',
        },
      ],
    });
  });

  it('reports a path that cannot be read', async () => {
    const orders = await file('notdir/orders.yaml', toYaml(validNamespace()));
    const inside = join(orders, 'inner.yaml');
    const { diagnostics } = await readSources([inside]);
    expect(diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_FILE_UNREADABLE',
        message: 'cannot read: ENOTDIR',
        file: inside,
        line: 0,
        column: 0,
        path: '',
        hint: 'check the path',
      },
    ]);
  });

  it('refuses a 10 MB file without reading it', async () => {
    const big = await file('big/huge.yaml', Buffer.alloc(10 * 1024 * 1024, '#'));
    expect((await readSources([big])).diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_FILE_TOO_LARGE',
        message: `file is 10485760 bytes; namespace files are limited to ${MAX_FILE_BYTES} bytes`,
        file: big,
        line: 0,
        column: 0,
        path: '',
        hint: 'split it into one file per namespace',
      },
    ]);
  });

  it('rejects a binary file at its first NUL byte', async () => {
    const binary = await file('bin/orders.yaml', Buffer.from('namespace: orders\nteam: com\0merce\n'));
    expect((await readSources([binary])).diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_NOT_TEXT',
        message: 'file is binary (contains a NUL byte), not YAML',
        file: binary,
        line: 2,
        column: 10,
        path: '',
        hint: 'pass a YAML namespace file',
      },
    ]);
  });

  it('rejects a file that is not UTF-8 at the first invalid byte', async () => {
    // "café" saved as Latin-1: 0xE9 is not valid UTF-8 here.
    const latin1 = await file('enc/orders.yaml', Buffer.from('namespace: orders\nteam: caf\xe9\n', 'latin1'));
    expect((await readSources([latin1])).diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_ENCODING',
        message: 'file is not valid UTF-8',
        file: latin1,
        line: 2,
        column: 10,
        path: '',
        hint: 'save the file as UTF-8',
      },
    ]);
  });

  it('accepts multi-byte UTF-8 text', async () => {
    const text = toYaml(validNamespace({ description: 'Bestellungen für Zürich — 注文' }));
    const orders = await file('utf8/orders.yaml', text);
    expect(await readSources([orders])).toEqual({ sources: [{ file: orders, text }], diagnostics: [] });
  });
});

describe('reading stdin', () => {
  it('reads "-" from stdin as <stdin>', async () => {
    const text = toYaml(validNamespace());
    const result = await readSources(['-'], async () => Buffer.from(text));
    expect(result).toEqual({ sources: [{ file: '<stdin>', text }], diagnostics: [] });
  });

  it('refuses stdin larger than the file limit', async () => {
    const { diagnostics } = await readSources(['-'], async () => Buffer.alloc(MAX_FILE_BYTES + 1, '#'));
    expect(diagnostics.map((d) => [d.rule, d.file])).toEqual([['E_FILE_TOO_LARGE', '<stdin>']]);
  });

  it('rejects binary stdin', async () => {
    const { diagnostics } = await readSources(['-'], async () => Buffer.from([0x00, 0x01, 0x02]));
    expect(diagnostics.map((d) => [d.rule, d.file, d.line, d.column])).toEqual([
      ['E_NOT_TEXT', '<stdin>', 1, 1],
    ]);
  });
});

describe('reading directories', () => {
  it('finds .yaml and .yml files recursively, in a stable order, and nothing else', async () => {
    await file('tree/orders.yaml', toYaml(validNamespace()));
    await file('tree/teams/payments.yml', toYaml(validNamespace({ namespace: 'payments' })));
    await file('tree/teams/deep/er/search.YAML', toYaml(validNamespace({ namespace: 'search' })));
    await file('tree/README.md', '# not a namespace\n');
    await file('tree/teams/payments.json', '{}');
    await file('tree/teams/orders.yaml.bak', 'namespace: [\n');
    const { sources, diagnostics } = await readSources([path('tree')]);
    expect(diagnostics).toEqual([]);
    expect(sources.map((s) => s.file)).toEqual([
      path('tree/orders.yaml'),
      path('tree/teams/deep/er/search.YAML'),
      path('tree/teams/payments.yml'),
    ]);
  });

  it('descends into a symbolic link to a directory, lists no symbolic link to a file, and survives a loop', async () => {
    await file('linked/orders.yaml', toYaml(validNamespace()));
    await file('outside/elsewhere.yaml', toYaml(validNamespace({ namespace: 'elsewhere' })));
    await symlink(path('outside'), path('linked/more'), 'dir');
    await symlink(path('outside/elsewhere.yaml'), path('linked/alias.yaml'));
    await symlink(path('linked'), path('outside/back'), 'dir');
    const { sources, diagnostics } = await readSources([path('linked')]);
    expect(diagnostics).toEqual([]);
    // The loop linked/more/back/more/... ends where the system refuses to follow it further.
    const files = sources.map((s) => s.file);
    expect(files).toContain(path('linked/orders.yaml'));
    expect(files).toContain(path('linked/more/elsewhere.yaml'));
    expect(files).toContain(path('linked/more/back/orders.yaml'));
    expect(files).toEqual([...files].sort());
    expect(files).not.toContain(path('linked/alias.yaml'));
  });

  it('reports a directory that holds no namespace files', async () => {
    await file('none/README.md', '# nothing here\n');
    await file('none/sub/orders.json', '{}');
    expect((await readSources([path('none')])).diagnostics).toEqual([
      {
        severity: 'error',
        rule: 'E_NO_FILES',
        message: 'directory holds no .yaml or .yml files',
        file: path('none'),
        line: 0,
        column: 0,
        path: '',
        hint: 'pass a file or a directory of namespace files',
      },
    ]);
  });
});

describe('validating paths', () => {
  it('validates every namespace found and reports every problem, including unreadable input', async () => {
    const good = await file('mixed/orders.yaml', toYaml(validNamespace()));
    const bad = await file(
      'mixed/payments.yaml',
      toYaml(validNamespace({ namespace: 'payments', team: 'Payments' })),
    );
    const missing = path('mixed/missing.yaml');
    const { report, loaded } = await validatePaths([good, bad, missing]);
    expect(report).toMatchObject({ valid: false, files: 3, namespaces: 2, errors: 2, warnings: 0 });
    expect(report.diagnostics.map((d) => [d.rule, d.file, d.line, d.column])).toEqual([
      ['E_FILE_NOT_FOUND', missing, 0, 0],
      ['E_TEAM_NAME', bad, 2, 7],
    ]);
    expect(loaded.map((l) => [l.request.namespace, l.valid])).toEqual([
      ['orders', true],
      ['payments', false],
    ]);
  });

  it('validates stdin given as "-"', async () => {
    const { report } = await validatePaths(['-'], {
      stdin: async () => Buffer.from(toYaml(validNamespace({ team: 'Commerce' }))),
    });
    expect(report.diagnostics.map((d) => [d.rule, d.file, d.line, d.column])).toEqual([
      ['E_TEAM_NAME', '<stdin>', 2, 7],
    ]);
  });
});
