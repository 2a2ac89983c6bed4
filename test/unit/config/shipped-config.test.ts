import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATALOG_FORMAT, loadCatalog } from '../../../src/admin/catalog.js';
import { oidcSettings, PRISM_CONFIG_FORMAT } from '../../../src/auth/oidc-config.js';
import { checkConfigFile } from '../../../src/config/config-file.js';
import { validatePaths } from '../../../src/config/validate.js';
import { loadStackConfig } from '../../../src/localstack/catalog.js';
import { COMPONENTS_FORMAT } from '../../../src/localstack/catalog-schema.js';
import { REPO_ROOT } from '../../support/cli.js';

/** Every config file the package ships or the docs show passes the loader its format uses. */

const dir = mkdtempSync(join(tmpdir(), 'prism-shipped-config-'));

/** The fenced ```yaml blocks of a doc. */
function yamlBlocks(doc: string): string[] {
  const text = readFileSync(join(REPO_ROOT, doc), 'utf8');
  return [...text.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
}

function docBlock(doc: string, marker: RegExp): string {
  const blocks = yamlBlocks(doc).filter((b) => marker.test(b));
  expect(blocks, `one yaml block of ${doc} matching ${String(marker)}`).toHaveLength(1);
  return blocks[0]!;
}

describe('shipped and documented config files', () => {
  it('validates every example namespace and runner config', async () => {
    const paths = ['examples/namespaces', 'examples/runners'].map((p) => join(REPO_ROOT, p));
    const { report, loaded } = await validatePaths(paths);
    expect(report.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const files = paths.flatMap((p) => readdirSync(p).filter((f) => f.endsWith('.yaml')));
    expect(report.files).toBe(files.length);
    expect(loaded.length).toBeGreaterThanOrEqual(files.length);
  });

  it('loads templates/dev/components.yaml with the test fixture dev.yaml on top', () => {
    const catalog = join(REPO_ROOT, 'templates/dev/components.yaml');
    expect(checkConfigFile(catalog, COMPONENTS_FORMAT).diagnostics).toEqual([]);
    const fixture = join(REPO_ROOT, 'test/fixtures/dev/local-images.yaml');
    const config = loadStackConfig({ packageRoot: REPO_ROOT, configFile: fixture, configRequired: true });
    expect(config.sources).toEqual([catalog, fixture]);
    expect(config.components.map((c) => [c.name, c.image, c.ports])).toEqual([
      ['redis', 'prism-local/redis:7', { redis: 16379 }],
      ['nats', 'prism-local/nats:2', { client: 14222, monitor: 18222 }],
      ['postgres', 'prism-local/postgres:15', { postgres: 15432 }],
    ]);
  });

  it("loads docs/local-stack.md's dev.yaml", () => {
    const file = join(dir, 'dev.yaml');
    writeFileSync(file, docBlock('docs/local-stack.md', /^# \$PRISM_HOME\/dev\.yaml/));
    const config = loadStackConfig({ packageRoot: REPO_ROOT, configFile: file, configRequired: true });
    expect(config.components.map((c) => c.name)).toEqual(['redis', 'nats', 'postgres', 'dex', 'vault']);
    expect(config.components[0]).toMatchObject({
      image: 'registry.internal/mirror/redis:7',
      ports: { redis: 16379 },
    });
  });

  it("loads docs/identity.md's config.yaml", () => {
    const home = mkdtempSync(join(dir, 'home-'));
    writeFileSync(join(home, 'config.yaml'), docBlock('docs/identity.md', /^oidc:/));
    expect(checkConfigFile(join(home, 'config.yaml'), PRISM_CONFIG_FORMAT).diagnostics).toEqual([]);
    expect(oidcSettings(home, {}, {})).toEqual({
      issuer: 'https://login.example.com/realms/prism',
      clientId: 'prismctl',
      scopes: 'openid email profile groups offline_access',
    });
  });

  it('loads examples/backends.yaml', async () => {
    const file = join(REPO_ROOT, 'examples/backends.yaml');
    expect(checkConfigFile(file, CATALOG_FORMAT).diagnostics).toEqual([]);
    const catalog = await loadCatalog(file);
    expect(Object.keys(catalog)).toEqual(['redis', 'postgres', 'nats', 'kafka', 'memstore']);
    expect(catalog.redis).toEqual([
      { name: 'cache-main', backend: 'redis', endpoint: 'redis://127.0.0.1:6379' },
    ]);
  });
});
