import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '../../../src/admin/catalog.js';
import { oidcSettings } from '../../../src/auth/oidc-config.js';
import { ConfigFileError } from '../../../src/config/config-file.js';
import type { Diagnostic } from '../../../src/config/diagnostics.js';
import { validatePaths } from '../../../src/config/validate.js';
import { loadStackConfig } from '../../../src/localstack/catalog.js';

/**
 * Every YAML config file goes through one loader (src/config/config-file.ts): a valid file loads
 * to exact values; bad input is refused with diagnostics naming file, line, column and field, and
 * nothing comes back from the load.
 */

const dir = mkdtempSync(join(tmpdir(), 'prism-config-file-'));
let count = 0;
function write(name: string, text: string): string {
  const sub = join(dir, String(count++));
  mkdirSync(join(sub, 'templates/dev'), { recursive: true });
  const file = join(sub, name);
  writeFileSync(file, text);
  return file;
}

type Problem = Pick<Diagnostic, 'line' | 'column' | 'rule' | 'message' | 'hint'>;

/** Runs a load that must fail; returns its problems and checks the file was left as it was. */
async function refused(
  file: string,
  load: () => unknown,
): Promise<{ error: ConfigFileError; problems: Problem[] }> {
  const before = readFileSync(file, 'utf8');
  let error: unknown;
  try {
    await load();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigFileError);
  expect(readFileSync(file, 'utf8')).toBe(before);
  const diagnostics = (error as ConfigFileError).diagnostics;
  for (const d of diagnostics) expect(d.file).toBe(file);
  return {
    error: error as ConfigFileError,
    problems: diagnostics.map(({ line, column, rule, message, hint }) => ({
      line,
      column,
      rule,
      message,
      hint,
    })),
  };
}

describe('the backends catalog (admin serve / proxy serve --backends)', () => {
  const load = (text: string) => {
    const file = write('backends.yaml', text);
    return { file, run: () => loadCatalog(file) };
  };

  it('loads every instance in the operator order', async () => {
    const { run } = load(
      [
        'backends:',
        '  redis:',
        '    - { name: main, endpoint: "redis://10.0.0.5:6379" }',
        '    - { name: replica, endpoint: "redis://10.0.0.6:6379" }',
        '  memstore: [{ name: local, endpoint: "memory://" }]',
        '',
      ].join('\n'),
    );
    expect(await run()).toEqual({
      redis: [
        { name: 'main', backend: 'redis', endpoint: 'redis://10.0.0.5:6379' },
        { name: 'replica', backend: 'redis', endpoint: 'redis://10.0.0.6:6379' },
      ],
      memstore: [{ name: 'local', backend: 'memstore', endpoint: 'memory://' }],
    });
  });

  it.each([
    [
      'a list written as a mapping',
      'backends:\n  redis: { name: main, endpoint: "redis://h:6379" }\n',
      {
        line: 2,
        column: 10,
        rule: 'E_SCHEMA_TYPE',
        message: 'backends.redis must be a list, found a mapping',
        hint: 'write a list: `- item`',
      },
    ],
    [
      'an unknown backend',
      'backends:\n  rediss: []\n',
      {
        line: 2,
        column: 3,
        rule: 'E_SCHEMA_UNKNOWN_KEY',
        message: "unknown key 'rediss' in backends",
        hint: "did you mean 'redis'?",
      },
    ],
    [
      'an instance without an endpoint',
      'backends:\n  redis:\n    - { name: main }\n',
      {
        line: 3,
        column: 7,
        rule: 'E_SCHEMA_REQUIRED',
        message: "backends.redis[0] is missing required key 'endpoint'",
        hint: 'add `endpoint: ...`',
      },
    ],
    [
      'credentials in an endpoint',
      'backends:\n  redis:\n    - name: main\n      endpoint: "redis://app:hunter2@h:6379"\n',
      {
        line: 4,
        column: 17,
        rule: 'E_CATALOG_CREDENTIALS',
        message: 'backends.redis[0].endpoint carries credentials',
        hint: 'keep them in Vault or the environment',
      },
    ],
  ])('refuses %s, naming file, line, column and field', async (_, text, problem) => {
    const { file, run } = load(text);
    const { error, problems } = await refused(file, run);
    expect(problems).toEqual([problem]);
    expect(error).toMatchObject({
      code: 'E_USAGE',
      message: `${file} is not a valid backends catalog (1 error)`,
    });
    expect(JSON.stringify(error.diagnostics)).not.toContain('hunter2');
  });

  it('reports every problem at once: a misspelt key leaves a required one missing', async () => {
    const { file, run } = load('backends:\n  redis:\n    - { name: main, endpont: "redis://h:6379" }\n');
    const { error, problems } = await refused(file, run);
    expect(error.message).toBe(`${file} is not a valid backends catalog (2 errors)`);
    expect(problems).toEqual([
      {
        line: 3,
        column: 7,
        rule: 'E_SCHEMA_REQUIRED',
        message: "backends.redis[0] is missing required key 'endpoint'",
        hint: 'add `endpoint: ...`',
      },
      {
        line: 3,
        column: 21,
        rule: 'E_SCHEMA_UNKNOWN_KEY',
        message: "unknown key 'endpont' in backends.redis[0]",
        hint: "did you mean 'endpoint'?",
      },
    ]);
  });

  it('refuses a file whose `backends:` is misspelt', async () => {
    const { file, run } = load('backend:\n  redis: []\n');
    const { problems } = await refused(file, run);
    expect(problems).toEqual([
      {
        line: 1,
        column: 1,
        rule: 'E_SCHEMA_REQUIRED',
        message: "the backends catalog is missing required key 'backends'",
        hint: 'add `backends: ...`',
      },
      {
        line: 1,
        column: 1,
        rule: 'E_SCHEMA_UNKNOWN_KEY',
        message: "unknown key 'backend' in the backends catalog",
        hint: "did you mean 'backends'?",
      },
    ]);
  });

  it('refuses a YAML syntax error at its position', async () => {
    const { file, run } = load('backends:\n  redis: [{ name: main\n');
    const { problems } = await refused(file, run);
    // The unclosed mapping and the unclosed list are both reported where the text ends.
    expect(problems.map((p) => [p.line, p.column, p.rule])).toEqual([
      [3, 1, 'E_YAML_SYNTAX'],
      [3, 1, 'E_YAML_SYNTAX'],
    ]);
  });

  it('refuses an empty file and a file of several documents', async () => {
    const empty = load('# no backends yet\n');
    expect((await refused(empty.file, empty.run)).problems).toEqual([
      {
        line: 1,
        column: 1,
        rule: 'E_EMPTY_FILE',
        message: 'file holds no backends catalog',
        hint: 'write `backends: { redis: [{ name: main, endpoint: redis://host:6379 }] }`',
      },
    ]);
    const two = load('backends: {}\n---\nbackends: {}\n');
    expect((await refused(two.file, two.run)).problems).toEqual([
      {
        line: 3,
        column: 1,
        rule: 'E_YAML_DOCUMENTS',
        message: 'a backends catalog holds one YAML document, found 2',
        hint: 'remove the `---` and what follows it',
      },
    ]);
  });

  it('refuses a file that is not there with the unreadable-input code', async () => {
    const file = join(dir, 'absent-backends.yaml');
    await expect(loadCatalog(file)).rejects.toMatchObject({
      code: 'E_INPUT_UNREADABLE',
      message: `cannot read backends catalog ${file}: no such file or directory`,
    });
  });
});

describe('the dev stack catalog (templates/dev/components.yaml)', () => {
  const CATALOG = [
    'components:',
    '  redis:',
    '    image: redis:7',
    "    command: [redis-server, --port, '{{port.redis}}']",
    '    ports: { redis: 6379 }',
    '    volume: /data',
    '    probe: { type: redis, port: redis }',
    '  web:',
    '    image: local/web:1',
    '    env: { WORKERS: 2, DEBUG: false, NAME: web }',
    '    ports: { http: 8080 }',
    '    files: { /etc/web.yaml: web-config }',
    '    user: nobody',
    '    probe: { type: http, port: http, path: /healthz }',
    '    dependsOn: [redis]',
    '',
  ].join('\n');
  const load = (catalog: string, devYaml?: string) => {
    const file = write('templates/dev/components.yaml', catalog);
    const packageRoot = join(file, '../../..');
    const configFile = devYaml === undefined ? undefined : join(packageRoot, 'dev.yaml');
    if (configFile) writeFileSync(configFile, devYaml!);
    return {
      file,
      configFile,
      run: () => loadStackConfig({ packageRoot, ...(configFile ? { configFile } : {}) }),
    };
  };

  it('loads every component to exact values, in dependency order', () => {
    const { file, run } = load(CATALOG);
    expect(run()).toEqual({
      stack: 'dev',
      network: 'bridge',
      components: [
        {
          name: 'redis',
          image: 'redis:7',
          command: ['redis-server', '--port', '{{port.redis}}'],
          env: {},
          ports: { redis: 6379 },
          containerPorts: { redis: 6379 },
          volume: '/data',
          probe: { type: 'redis', port: 'redis' },
          dependsOn: [],
          files: {},
        },
        {
          name: 'web',
          image: 'local/web:1',
          env: { WORKERS: '2', DEBUG: 'false', NAME: 'web' },
          ports: { http: 8080 },
          containerPorts: { http: 8080 },
          probe: { type: 'http', port: 'http', path: '/healthz' },
          dependsOn: ['redis'],
          files: { '/etc/web.yaml': 'web-config' },
          user: 'nobody',
        },
      ],
      catalogPorts: { redis: { redis: 6379 }, web: { http: 8080 } },
      sources: [file],
    });
  });

  it.each([
    [
      'a port that is not a number',
      CATALOG.replace('ports: { redis: 6379 }', 'ports: { redis: six }'),
      {
        line: 5,
        column: 21,
        rule: 'E_SCHEMA_TYPE',
        message: 'components.redis.ports.redis must be an integer, found a string',
        hint: 'write an integer',
      },
    ],
    [
      'an unknown component key',
      CATALOG.replace('    volume: /data', '    volumes: /data'),
      {
        line: 6,
        column: 5,
        rule: 'E_SCHEMA_UNKNOWN_KEY',
        message: "unknown key 'volumes' in components.redis",
        hint: "did you mean 'volume'?",
      },
    ],
    [
      'a component without a probe',
      CATALOG.replace('    probe: { type: redis, port: redis }\n', ''),
      {
        line: 3,
        column: 5,
        rule: 'E_SCHEMA_REQUIRED',
        message: "components.redis is missing required key 'probe'",
        hint: 'add `probe: ...`',
      },
    ],
    [
      'a probe on a port the component does not have',
      CATALOG.replace('port: redis }', 'port: client }'),
      {
        line: 7,
        column: 33,
        rule: 'E_DEV_PROBE_PORT',
        message: "components.redis.probe.port 'client' names no port of redis",
        hint: 'use one of: redis',
      },
    ],
    [
      'a dependency on an unknown component',
      CATALOG.replace('dependsOn: [redis]', 'dependsOn: [redis, vault]'),
      {
        line: 15,
        column: 24,
        rule: 'E_DEV_COMPONENT',
        message: "components.web.dependsOn[1] names unknown component 'vault'",
        hint: 'use one of: redis, web',
      },
    ],
  ])('refuses %s, naming file, line, column and field', async (_, text, problem) => {
    const { file, run } = load(text);
    const { error, problems } = await refused(file, run);
    expect(problems).toEqual([problem]);
    expect(error).toMatchObject({
      code: 'E_USAGE',
      message: `${file} is not a valid dev stack component catalog (1 error)`,
      hint: 'nothing was started; see docs/local-stack.md',
    });
  });

  it('refuses a YAML syntax error at its position', async () => {
    const { file, run } = load('components:\n  redis: { image: redis:7\n');
    const { problems } = await refused(file, run);
    expect(problems.map((p) => [p.line, p.column, p.rule])).toEqual([[3, 1, 'E_YAML_SYNTAX']]);
  });

  it('checks dev.yaml against this catalog: its component and port names, and value types', async () => {
    const { configFile, run } = load(
      CATALOG,
      'components:\n  web:\n    enabled: no\n    ports: { htp: 1 }\n  redsi: {}\n',
    );
    const { error, problems } = await refused(configFile!, run);
    expect(error.message).toBe(`${configFile} is not a valid dev stack config (3 errors)`);
    expect(problems).toEqual([
      {
        line: 3,
        column: 14,
        rule: 'E_SCHEMA_TYPE',
        message: 'components.web.enabled must be a boolean, found a string',
        hint: 'write a boolean',
      },
      {
        line: 4,
        column: 14,
        rule: 'E_SCHEMA_UNKNOWN_KEY',
        message: "unknown key 'htp' in components.web.ports",
        hint: "did you mean 'http'?",
      },
      {
        line: 5,
        column: 3,
        rule: 'E_SCHEMA_UNKNOWN_KEY',
        message: "unknown key 'redsi' in components",
        hint: "did you mean 'redis'?",
      },
    ]);
  });
});

describe('$PRISM_HOME/config.yaml (prismctl login)', () => {
  const home = (text: string) => {
    const file = write('config.yaml', text);
    return { file, home: join(file, '..') };
  };

  it('gives the issuer, client id and scopes it holds, under flags and environment', () => {
    const { home: h } = home(
      'oidc:\n  issuer: https://login.example.com/realms/prism\n  client_id: cli\n  scopes: [openid, groups]\n',
    );
    expect(oidcSettings(h, {}, {})).toEqual({
      issuer: 'https://login.example.com/realms/prism',
      clientId: 'cli',
      scopes: 'openid groups',
    });
    expect(oidcSettings(h, { scopes: 'openid' }, { PRISM_OIDC_CLIENT_ID: 'env-cli' })).toEqual({
      issuer: 'https://login.example.com/realms/prism',
      clientId: 'env-cli',
      scopes: 'openid',
    });
  });

  it('reads an empty file, or none, as no settings', () => {
    expect(oidcSettings(home('# nothing yet\n').home, { issuer: 'https://idp.example' }, {})).toEqual({
      issuer: 'https://idp.example',
      clientId: 'prismctl',
      scopes: 'openid email profile groups offline_access',
    });
    expect(oidcSettings(join(dir, 'no-such-home'), { issuer: 'https://idp.example' }, {}).clientId).toBe(
      'prismctl',
    );
  });

  it.each([
    [
      'an issuer that is not a string',
      'oidc:\n  issuer: 42\n',
      {
        line: 2,
        column: 11,
        rule: 'E_SCHEMA_TYPE',
        message: 'oidc.issuer must be a string, found an integer',
        hint: 'for example: https://login.example.com/realms/prism',
      },
    ],
    [
      'an issuer that is not an http(s) URL',
      'oidc:\n  issuer: login.example.com\n',
      {
        line: 2,
        column: 11,
        rule: 'E_SCHEMA_PATTERN',
        message: "oidc.issuer 'login.example.com' has the wrong format",
        hint: "for example 'https://login.example.com/realms/prism'",
      },
    ],
    [
      'scopes that are neither a string nor a list',
      'oidc:\n  scopes: 7\n',
      {
        line: 2,
        column: 11,
        rule: 'E_SCHEMA_TYPE',
        message: 'oidc.scopes must be a string or a list of strings, found an integer',
        hint: 'write the scopes as one space-separated string or a list',
      },
    ],
    [
      'a misspelt key',
      'oidc:\n  client-id: cli\n',
      {
        line: 2,
        column: 3,
        rule: 'E_SCHEMA_UNKNOWN_KEY',
        message: "unknown key 'client-id' in oidc",
        hint: "did you mean 'client_id'?",
      },
    ],
    [
      'an unknown top-level key',
      'odic:\n  issuer: https://idp.example\n',
      {
        line: 1,
        column: 1,
        rule: 'E_SCHEMA_UNKNOWN_KEY',
        message: "unknown key 'odic' in the prismctl configuration",
        hint: "did you mean 'oidc'?",
      },
    ],
  ])(
    'refuses %s, naming file, line, column and field, even when flags name the issuer',
    async (_, text, problem) => {
      const { file, home: h } = home(text);
      const { error, problems } = await refused(file, () =>
        oidcSettings(h, { issuer: 'https://flag.example' }, {}),
      );
      expect(problems).toEqual([problem]);
      expect(error).toMatchObject({
        code: 'E_USAGE',
        message: `${file} is not a valid prismctl configuration (1 error)`,
      });
    },
  );

  it('refuses a YAML syntax error at its position', async () => {
    const { file, home: h } = home('oidc:\n  issuer: [https://idp.example\n');
    const { problems } = await refused(file, () => oidcSettings(h, {}, {}));
    expect(problems.map((p) => [p.line, p.column, p.rule])).toEqual([[3, 1, 'E_YAML_SYNTAX']]);
  });
});

describe('namespace files, through the same parser and schema diagnostics', () => {
  const NS =
    'namespace: orders\nteam: commerce\npatterns:\n  - name: cache\n    type: keyvalue\n    slots:\n      store: { backend: redis }\n';
  const check = async (text: string) => {
    const file = write('ns.yaml', text);
    const { report, loaded } = await validatePaths([file]);
    expect(report.diagnostics.every((d) => d.file === file)).toBe(true);
    return {
      loaded,
      problems: report.diagnostics.map(({ line, column, rule, message }) => [line, column, rule, message]),
    };
  };

  it('loads a valid file to exact values', async () => {
    const { loaded, problems } = await check(NS);
    expect(problems).toEqual([]);
    expect(
      loaded.map((l) => [l.request.namespace, l.request.team, l.request.patterns[0]!.slots.store!.backend]),
    ).toEqual([['orders', 'commerce', 'redis']]);
  });

  it.each([
    [
      'a wrong type',
      NS.replace('team: commerce', 'team: [commerce]'),
      [2, 7, 'E_SCHEMA_TYPE', 'team must be a string, found a list'],
    ],
    [
      'an unknown key',
      NS + 'desciption: x\n',
      [8, 1, 'E_SCHEMA_UNKNOWN_KEY', "unknown key 'desciption' in the namespace"],
    ],
    [
      'a missing required key',
      NS.replace('team: commerce\n', ''),
      [1, 1, 'E_SCHEMA_REQUIRED', "the namespace is missing required key 'team'"],
    ],
    ['a YAML syntax error', 'namespace: [orders\n', [2, 1, 'E_YAML_SYNTAX', expect.any(String)]],
  ])('refuses %s, naming file, line, column and field', async (_, text, problem) => {
    const { loaded, problems } = await check(text);
    expect(problems).toEqual([problem]);
    expect(loaded.filter((l) => l.valid)).toEqual([]);
  });
});
