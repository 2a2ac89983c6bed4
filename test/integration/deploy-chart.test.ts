/**
 * The Helm chart of deploy/helm/prism, rendered by the real helm (built from the Go module proxy
 * by scripts/deploy-tools.sh) and validated offline against the Kubernetes API schemas that the
 * PyPI package kubernetes-validate bundles, in strict mode (an unknown field is an error). The
 * arguments it gives the containers are checked against the flags of `prismctl admin serve` and
 * `prismctl proxy serve` in the oclif manifest, so the chart cannot pass a flag that does not
 * exist.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, REPO_ROOT } from '../support/cli.js';

const CHART = join(REPO_ROOT, 'deploy/helm/prism');
const INSTALL_TIMEOUT_MS = 30 * 60_000; // helm's first build on two busy cores; cached after
/** The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the newest bundled. */
const KUBE_VERSIONS = ['1.25.0', '1.37.0'];
const BASE = ['--set', 'tls.secretName=prism-tls', '--set', 'auth.issuer=https://dex.example.com/dex'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
type Manifest = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function run(cmd: string, args: string[], timeout = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: REPO_ROOT, timeout, maxBuffer: 32 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

let helm = '';
let kubeValidate = '';
const work = mkdtempSync(join(tmpdir(), 'prism-chart-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeAll(async () => {
  const install = await run('bash', ['scripts/deploy-tools.sh', 'install'], INSTALL_TIMEOUT_MS);
  expect(install.code, install.stderr).toBe(0);
  const env = await run('bash', ['scripts/deploy-tools.sh', 'env']);
  helm = /PRISM_HELM_BIN=(\S+)/.exec(env.stdout)![1]!;
  kubeValidate = /PRISM_KUBE_VALIDATE_BIN=(\S+)/.exec(env.stdout)![1]!;
  await ensureBuilt();
}, INSTALL_TIMEOUT_MS);

async function template(args: string[]): Promise<Run> {
  return run(helm, ['template', 'prism', CHART, '--namespace', 'data', ...args]);
}

async function render(args: string[]): Promise<{ text: string; docs: Manifest[] }> {
  const out = await template(args);
  expect(out.code, out.stderr).toBe(0);
  const docs = parseAllDocuments(out.stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);
  return { text: out.stdout, docs };
}

/** kubernetes-validate --strict on the text, against each version; the combined output. */
async function validate(text: string, name: string): Promise<Run> {
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, text);
  let code = 0;
  let stdout = '';
  for (const version of KUBE_VERSIONS) {
    const r = await run(kubeValidate, ['--strict', '--no-warn', '-k', version, file]);
    code ||= r.code;
    stdout += r.stdout + r.stderr;
  }
  return { code, stdout, stderr: '' };
}

const find = (docs: Manifest[], kind: string, name: string): Manifest => {
  const doc = docs.find((d) => d.kind === kind && d.metadata?.name === name);
  if (!doc)
    throw new Error(`no ${kind} ${name} in ${docs.map((d) => `${d.kind}/${d.metadata?.name}`).join(', ')}`);
  return doc;
};
const container = (docs: Manifest[], component: 'admin' | 'proxy'): Manifest =>
  find(docs, 'Deployment', `prism-prism-${component}`).spec.template.spec.containers[0];

/** The flag names of a command in the oclif manifest the build writes. */
function flagsOf(command: string): Set<string> {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')) as {
    commands: Record<string, { flags: Record<string, unknown> }>;
  };
  return new Set(Object.keys(manifest.commands[command]!.flags));
}

const RENDERINGS: Record<string, string[]> = {
  'sqlite-tls': BASE,
  'postgres-vault-mtls': [
    '-f',
    join(CHART, 'values-postgres.yaml'),
    ...BASE,
    ...['--set', 'tls.requireClientCert=true', '--set', 'vault.enabled=true'],
    ...['--set', 'vault.address=https://vault.vault.svc:8200', '--set', 'vault.caSecretName=vault-ca'],
    ...['--set', 'proxy.adminTokenSecret.name=prism-proxy-token', '--set', 'backends.redis[0].name=cache'],
    ...[
      '--set',
      'backends.redis[0].endpoint=redis://redis.data.svc:6379',
      '--set',
      'auth.proxyGroups={prism-proxies}',
    ],
  ],
  'plaintext-noauth': ['--set', 'tls.enabled=false', '--set', 'auth.disabled=true'],
};

describe('the Helm chart (deploy/helm/prism)', () => {
  for (const [name, args] of Object.entries(RENDERINGS)) {
    it(`renders ${name} into manifests valid against the Kubernetes ${KUBE_VERSIONS.join(' and ')} schemas`, async () => {
      const { text, docs } = await render(args);
      expect(docs.length).toBeGreaterThanOrEqual(8);
      const result = await validate(text, name);
      expect(result.code, result.stdout).toBe(0);
    });
  }

  it('passes the containers only flags that admin serve and proxy serve have', async () => {
    const known = { admin: flagsOf('admin:serve'), proxy: flagsOf('proxy:serve') };
    for (const args of Object.values(RENDERINGS)) {
      const { docs } = await render(args);
      for (const component of ['admin', 'proxy'] as const) {
        const argv = container(docs, component).args as string[];
        expect(argv.slice(0, 2)).toEqual([component, 'serve']);
        const unknown = argv
          .slice(2)
          .map((a) => /^--([a-z0-9-]+)/.exec(a)?.[1] ?? `not a flag: ${a}`)
          .filter((f) => !known[component].has(f));
        expect(unknown, `${component}: ${argv.join(' ')}`).toEqual([]);
      }
    }
  });

  it('probes /healthz and /readyz over TLS, annotates for Prometheus and budgets disruptions', async () => {
    const { docs } = await render(BASE);
    for (const component of ['admin', 'proxy'] as const) {
      const c = container(docs, component);
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http', scheme: 'HTTPS' });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http', scheme: 'HTTPS' });
      expect(c.args).toContain('--tls-cert=/etc/prism/tls/tls.crt');
      expect(c.securityContext.runAsNonRoot).toBe(true);
      const pod = find(docs, 'Deployment', `prism-prism-${component}`).spec.template;
      const port = component === 'admin' ? '8982' : '50091';
      expect(pod.metadata.annotations).toMatchObject({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': port,
        'prometheus.io/path': '/metrics',
        'prometheus.io/scheme': 'https',
      });
      expect(find(docs, 'PodDisruptionBudget', `prism-prism-${component}`).spec.selector.matchLabels).toEqual(
        {
          'app.kubernetes.io/name': 'prism',
          'app.kubernetes.io/instance': 'prism',
          'app.kubernetes.io/component': component,
        },
      );
    }
    expect(container(docs, 'proxy').args).toContain('--admin=grpcs://prism-prism-admin.data.svc:8981');
    expect(container(docs, 'admin').args).toContain('--store=/var/lib/prism/data/admin.db');
  });

  it('wires PostgreSQL from a Secret and Vault kubernetes auth with a projected token', async () => {
    const { docs } = await render(RENDERINGS['postgres-vault-mtls']!);
    const admin = container(docs, 'admin');
    expect(find(docs, 'Deployment', 'prism-prism-admin').spec.replicas).toBe(2);
    expect(admin.env).toContainEqual({
      name: 'PRISM_ADMIN_STORE',
      valueFrom: { secretKeyRef: { name: 'prism-admin-store', key: 'url' } },
    });
    expect(admin.args).toContain('--store-schema=prism');
    expect(admin.args.some((a: string) => a.startsWith('--store='))).toBe(false);
    const proxy = container(docs, 'proxy');
    expect(proxy.args).toEqual(
      expect.arrayContaining([
        '--vault-address=https://vault.vault.svc:8200',
        '--vault-auth-mount=kubernetes',
        '--vault-jwt-file=/var/run/secrets/vault/token',
        '--vault-ca-file=/etc/prism/vault-ca/ca.crt',
        '--admin-tls-client-cert=/etc/prism/tls/tls.crt',
        '--tls-client-ca=/etc/prism/tls/ca.crt',
        '--admin-token-file=/etc/prism/admin-token/token',
      ]),
    );
    const volumes = find(docs, 'Deployment', 'prism-prism-proxy').spec.template.spec.volumes as Manifest[];
    expect(volumes.find((v) => v.name === 'vault-token')!.projected.sources).toEqual([
      { serviceAccountToken: { path: 'token', audience: 'vault', expirationSeconds: 3600 } },
    ]);
    expect(find(docs, 'ServiceAccount', 'prism-prism-proxy').kind).toBe('ServiceAccount');
    expect(find(docs, 'ConfigMap', 'prism-prism-backends').data['backends.yaml']).toBe(
      'backends:\n  redis:\n  - endpoint: redis://redis.data.svc:6379\n    name: cache\n',
    );
    expect(docs.some((d) => d.kind === 'PersistentVolumeClaim')).toBe(false);
  });

  it('fails validation on a manifest with a misspelt field or a missing required one, naming it', async () => {
    const { text } = await render(BASE);
    // The first container in the output is the admin's (Deployments render admin, then proxy).
    const misspelt = text.replace('readOnlyRootFilesystem:', 'readOnlyRootFileSystem:');
    expect(misspelt).not.toBe(text);
    const unknown = await validate(misspelt, 'misspelt');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stdout).toMatch(
      /ERROR .* did not validate for resource deployment\/prism-prism-admin against version 1\.25: .*'readOnlyRootFileSystem' was unexpected/,
    );
    const missing = await validate(text.replace('containerPort:', 'containerPorts:'), 'missing');
    expect(missing.code).not.toBe(0);
    expect(missing.stdout).toContain(
      "did not validate for resource deployment/prism-prism-admin against version 1.37: spec.template.spec.containers.0.ports.0: 'containerPort' is a required property",
    );
  });

  it('refuses settings that cannot work, with the reason', async () => {
    const twoSqlite = await template([...BASE, '--set', 'admin.replicas=2']);
    expect(twoSqlite.code).not.toBe(0);
    expect(twoSqlite.stderr).toContain('admin.replicas > 1 needs admin.store.type=postgres');
    const noIssuer = await template(['--set', 'tls.secretName=prism-tls']);
    expect(noIssuer.code).not.toBe(0);
    expect(noIssuer.stderr).toContain('auth.issuer is required');
    const noSecret = await template(['--set', 'auth.issuer=https://dex.example.com/dex']);
    expect(noSecret.code).not.toBe(0);
    expect(noSecret.stderr).toContain('tls.secretName is required when tls.enabled');
  });
});
