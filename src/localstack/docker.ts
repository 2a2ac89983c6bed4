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

/** Where the Docker engine should be: DOCKER_HOST, or the default socket. */
export function dockerTarget(env: NodeJS.ProcessEnv = process.env): string {
  const host = env.DOCKER_HOST?.trim();
  return host ? host : `unix://${DEFAULT_SOCKET}`;
}

/** Asks the engine at `target` for `GET /_ping`, within `timeoutMs`. Never throws. */
export function pingDocker(target = dockerTarget(), timeoutMs = 500): Promise<DockerProbe> {
  return new Promise((resolve) => {
    let options: { socketPath?: string; host?: string; port?: number };
    if (target.startsWith('unix://')) options = { socketPath: target.slice('unix://'.length) };
    else if (target.startsWith('tcp://') || target.startsWith('http://')) {
      const url = new URL(target.replace(/^tcp:/, 'http:'));
      options = { host: url.hostname, port: Number(url.port || 2375) };
    } else {
      resolve({ ok: false, target, reason: 'DOCKER_HOST is neither unix:// nor tcp://' });
      return;
    }
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
