import { request } from 'node:http';

export interface DockerProbe {
  /** True when an engine answered `GET /_ping` with OK. */
  ok: boolean;
  /** Where we asked: `unix:///var/run/docker.sock` or `tcp://host:port`. */
  target: string;
  /** Why it did not answer, e.g. "no such socket". */
  reason?: string;
}

const DEFAULT_SOCKET = '/var/run/docker.sock';

/**
 * Where an engine may listen, in the order we ask: DOCKER_HOST alone when it is set (an explicit
 * choice is never second-guessed), otherwise the default socket, the rootless Docker socket and
 * the Podman sockets (rootless, then system).
 */
export function engineCandidates(
  env: NodeJS.ProcessEnv = process.env,
  uid = process.getuid?.() ?? 0,
): string[] {
  const host = env.DOCKER_HOST?.trim();
  if (host) return [host];
  const runtime = env.XDG_RUNTIME_DIR?.trim() || `/run/user/${uid}`;
  return [
    `unix://${DEFAULT_SOCKET}`,
    `unix://${runtime}/docker.sock`,
    `unix://${runtime}/podman/podman.sock`,
    'unix:///run/podman/podman.sock',
  ].filter((target, i, all) => all.indexOf(target) === i);
}

export interface EngineSearch {
  /** The first engine that answered. */
  found?: DockerProbe;
  /** Every candidate asked, with why it did not answer. */
  tried: DockerProbe[];
}

/** Asks each candidate in turn; stops at the first that answers. Never throws. */
export async function findEngine(
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 500,
): Promise<EngineSearch> {
  const tried: DockerProbe[] = [];
  for (const target of engineCandidates(env)) {
    const probe = await pingDocker(target, timeoutMs);
    if (probe.ok) return { found: probe, tried };
    tried.push(probe);
  }
  return { tried };
}

/** "unix:///var/run/docker.sock (no such socket), unix:///run/user/1000/docker.sock (...)" */
export function describeTried(tried: readonly DockerProbe[]): string {
  return tried.map((p) => `${p.target} (${p.reason ?? 'no answer'})`).join(', ');
}

/**
 * dockerode's connection options for an engine target: unix:///path, a bare /path, or
 * tcp:// (or http://) host:port. Undefined for anything else (ssh://, npipe://, typos).
 */
export function dockerodeOptions(
  target: string,
): { socketPath: string } | { protocol: 'http'; host: string; port: number } | undefined {
  if (target.startsWith('unix://')) return { socketPath: target.slice('unix://'.length) };
  if (target.startsWith('/')) return { socketPath: target };
  if (!target.startsWith('tcp://') && !target.startsWith('http://')) return undefined;
  const url = new URL(target.replace(/^tcp:/, 'http:'));
  return { protocol: 'http', host: url.hostname, port: Number(url.port || 2375) };
}

/** Asks the engine at `target` for `GET /_ping`, within `timeoutMs`. Never throws. */
export function pingDocker(target: string, timeoutMs = 500): Promise<DockerProbe> {
  return new Promise((resolve) => {
    const found = dockerodeOptions(target);
    if (!found) {
      resolve({ ok: false, target, reason: 'DOCKER_HOST is neither unix:// nor tcp://' });
      return;
    }
    const options =
      'socketPath' in found ? { socketPath: found.socketPath } : { host: found.host, port: found.port };
    const req = request({ ...options, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () =>
        resolve(
          res.statusCode === 200
            ? { ok: true, target }
            : { ok: false, target, reason: `it answered HTTP ${res.statusCode} ${body.trim()}`.trim() },
        ),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, target, reason: explain(err) }));
    req.end();
  });
}

function explain(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such socket';
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'EACCES':
      return 'permission denied';
    default:
      return err.message;
  }
}
