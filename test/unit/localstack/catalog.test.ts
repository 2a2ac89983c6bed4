import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigFileError } from '../../../src/config/config-file.js';
import { loadStackConfig, startWaves } from '../../../src/localstack/catalog.js';
import { REPO_ROOT } from '../../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'prism-catalog-'));
function devYaml(text: string): string {
  const file = join(dir, `dev-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return file;
}
/** [line, column, rule, message, hint] of each problem the loader reported. */
function problems(run: () => unknown): Array<[number, number, string, string, string | undefined]> {
  try {
    run();
  } catch (err) {
    if (err instanceof ConfigFileError)
      return err.diagnostics.map((d) => [d.line, d.column, d.rule, d.message, d.hint]);
    throw err;
  }
  throw new Error('expected the load to fail');
}

const load = (configFile?: string, overrides = {}) =>
  loadStackConfig({ packageRoot: REPO_ROOT, ...(configFile ? { configFile } : {}), overrides });

describe('the component catalog', () => {
  it('lists the six components in dependency order, Vault after PostgreSQL and Dex', () => {
    const config = load();
    expect(config.stack).toBe('dev');
    expect(config.network).toBe('bridge');
    expect(config.components.map((c) => c.name)).toEqual([
      'redis',
      'nats',
      'postgres',
      'kafka',
      'dex',
      'vault',
    ]);
    expect(startWaves(config.components).map((w) => w.map((c) => c.name))).toEqual([
      ['redis', 'nats', 'postgres', 'kafka', 'dex'],
      ['vault'],
    ]);
    const probes = Object.fromEntries(config.components.map((c) => [c.name, c.probe.type]));
    expect(probes).toEqual({
      redis: 'redis',
      nats: 'nats',
      postgres: 'postgres',
      kafka: 'kafka',
      dex: 'http',
      vault: 'http',
    });
  });

  it('takes images, ports, commands, env, volume and the component set from dev.yaml', () => {
    const file = devYaml(
      [
        'stack: ci',
        'network: host',
        'only: [redis, postgres]',
        'components:',
        '  redis: { image: mirror.local/redis:7, ports: { redis: 16379 } }',
        '  postgres:',
        '    command: [prism-postgres]',
        "    env: { PGPORT: '{{port.postgres}}' }",
        '    user: postgres',
        '    volume: /var/lib/postgresql',
      ].join('\n'),
    );
    const config = load(file);
    expect(config).toMatchObject({ stack: 'ci', network: 'host', sources: [expect.any(String), file] });
    const [redis, postgres] = config.components;
    expect(redis).toMatchObject({ name: 'redis', image: 'mirror.local/redis:7', ports: { redis: 16379 } });
    expect(redis!.containerPorts).toEqual({ redis: 6379 });
    expect(postgres).toMatchObject({
      command: ['prism-postgres'],
      user: 'postgres',
      volume: '/var/lib/postgresql',
      env: {
        POSTGRES_USER: 'prism',
        POSTGRES_PASSWORD: 'prism',
        POSTGRES_DB: 'prism',
        PGPORT: '{{port.postgres}}',
      },
    });
  });

  it('drops a component with enabled: false, and a dependency outside the set', () => {
    const config = load(devYaml('components:\n  dex: { enabled: false }\n  kafka: { enabled: false }\n'));
    expect(config.components.map((c) => c.name)).toEqual(['redis', 'nats', 'postgres', 'vault']);
    expect(config.components.find((c) => c.name === 'vault')!.dependsOn).toEqual(['postgres']);
  });

  it('runs no Dex when dev.yaml names an issuer of your own, and keeps the catalog ports apart', () => {
    const file = devYaml(
      'network: host\nissuer: http://127.0.0.1:41000\ncomponents:\n  vault: { ports: { api: 18200 } }\n  dex: { ports: { http: 15556 } }\n',
    );
    const config = load(file);
    expect(config.issuer).toBe('http://127.0.0.1:41000');
    expect(config.components.map((c) => c.name)).toEqual(['redis', 'nats', 'postgres', 'kafka', 'vault']);
    expect(config.catalogPorts.vault).toEqual({ api: 8200 });
    expect(config.catalogPorts.dex).toEqual({ http: 5556 });
    expect(() => load(file, { only: ['vault', 'dex'] })).toThrow(
      'components names dex, but issuer: http://127.0.0.1:41000 replaces Dex',
    );
    expect(() => load(file, { network: 'bridge' })).toThrow(
      "issuer: http://127.0.0.1:41000 is on this machine's loopback, which the Vault container cannot reach on the bridge network",
    );
    expect(load(file, { network: 'host' }).issuer).toBe('http://127.0.0.1:41000');
    expect(problems(() => load(devYaml('issuer: 127.0.0.1:41000\n')))).toEqual([
      [
        1,
        9,
        'E_SCHEMA_PATTERN',
        "issuer '127.0.0.1:41000' has the wrong format",
        'write the http(s) URL of an OpenID issuer',
      ],
    ]);
  });

  it('lets flags win over dev.yaml', () => {
    const file = devYaml('only: [redis]\ncomponents:\n  redis: { ports: { redis: 16379 } }\n');
    const config = load(file, {
      stack: 'mine',
      network: 'bridge',
      only: ['redis', 'nats'],
      images: ['nats=local/nats:2'],
      ports: ['redis=26379', 'nats.monitor=28222'],
    });
    expect(config.stack).toBe('mine');
    expect(config.components.map((c) => [c.name, c.image, c.ports])).toEqual([
      ['redis', 'redis:7', { redis: 26379 }],
      ['nats', 'local/nats:2', { client: 4222, monitor: 28222 }],
    ]);
  });

  it.each([
    [
      'network: overlay\n',
      1,
      10,
      'E_SCHEMA_ENUM',
      "network has unknown value 'overlay'",
      'expected one of: bridge, host',
    ],
    [
      'components:\n  redis:\n    imgae: x\n',
      3,
      5,
      'E_SCHEMA_UNKNOWN_KEY',
      "unknown key 'imgae' in components.redis",
      "did you mean 'image'?",
    ],
    [
      'components:\n  rediss: {}\n',
      2,
      3,
      'E_SCHEMA_UNKNOWN_KEY',
      "unknown key 'rediss' in components",
      "did you mean 'redis'?",
    ],
    [
      'components:\n  nats:\n    ports: { clinet: 1 }\n',
      3,
      14,
      'E_SCHEMA_UNKNOWN_KEY',
      "unknown key 'clinet' in components.nats.ports",
      "did you mean 'client'?",
    ],
    [
      'components:\n  redis:\n    ports: { redis: 70000 }\n',
      3,
      21,
      'E_SCHEMA_RANGE',
      'components.redis.ports.redis must be at most 65535, found 70000',
      'use a value at most 65535',
    ],
    [
      'only: [redis, postgress]\n',
      1,
      15,
      'E_SCHEMA_ENUM',
      "only[1] has unknown value 'postgress'",
      "did you mean 'postgres'?",
    ],
    [
      'components: [redis\n',
      2,
      1,
      'E_YAML_SYNTAX',
      expect.any(String),
      'fix the YAML syntax at this position',
    ],
    [
      'stack: Bad_Name\n',
      1,
      8,
      'E_SCHEMA_PATTERN',
      "stack 'Bad_Name' has the wrong format",
      'write 1-31 lowercase letters, digits or dashes',
    ],
  ])('refuses %j naming the file, line, column and field', (text, line, column, rule, message, hint) => {
    const file = devYaml(text);
    let error: unknown;
    try {
      load(file);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigFileError);
    expect(error).toMatchObject({
      code: 'E_USAGE',
      message: `${file} is not a valid dev stack config (1 error)`,
    });
    expect((error as ConfigFileError).diagnostics).toEqual([
      { severity: 'error', rule, message, file, line, column, path: expect.any(String), hint },
    ]);
  });

  it.each([
    [{ images: ['redis'] }, '--image redis: expected <component>=<value>'],
    [{ images: ['rediss=x'] }, "--image: unknown component 'rediss'; did you mean 'redis'?"],
    [
      { ports: ['nats=1'] },
      '--port nats=1: nats has ports client, monitor; write --port nats.<port>=<number>',
    ],
    [{ ports: ['redis=0'] }, '--port redis=0: a port must be an integer from 1 to 65535'],
    [{ only: ['vault', 'deks'] }, "--components: unknown component 'deks'; did you mean 'dex'?"],
    [{ stack: 'UPPER' }, "stack name 'UPPER' must be 1-31 lowercase letters, digits or dashes"],
  ])('refuses flags %j naming the flag', (overrides, message) => {
    expect(() => load(undefined, overrides)).toThrow(message);
  });

  it('refuses a missing --config file, but not a missing default dev.yaml', () => {
    expect(() => load(join(dir, 'absent.yaml'))).not.toThrow();
    expect(() =>
      loadStackConfig({ packageRoot: REPO_ROOT, configFile: join(dir, 'absent.yaml'), configRequired: true }),
    ).toThrow(/cannot read .*absent\.yaml/);
  });
});
