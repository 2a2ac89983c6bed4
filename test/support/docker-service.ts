/**
 * The Docker engine for tests: `scripts/services/docker.sh up` starts a private dockerd (vfs
 * storage, no iptables, host networking only) and builds the images locally; its `env` prints
 * DOCKER_HOST and the PRISM_TEST_IMAGE_* names read here.
 *
 * Only DOCKER_HOST is used: the machine's default socket (/var/run/docker.sock) is never picked
 * up implicitly. When the engine does not answer, tests are skipped with a printed reason, or fail
 * when PRISM_REQUIRE_SERVICES=1 (CI), through services.ts's `describeIfPresent`.
 *
 *   const engine = await probeDocker();                 // top-level await in the test file
 *   describeIfPresent('docker', engine, '...', () => { ... });
 */
import Docker from 'dockerode';
import { dockerodeOptions } from '../../src/localstack/docker.js';

/** Locally built images (scripts/images/build-images.sh); names are stable. */
export const TEST_IMAGES = {
  redis: process.env.PRISM_TEST_IMAGE_REDIS || 'prism-local/redis:7',
  nats: process.env.PRISM_TEST_IMAGE_NATS || 'prism-local/nats:2',
  postgres: process.env.PRISM_TEST_IMAGE_POSTGRES || 'prism-local/postgres:15',
} as const;

/** Label carried by every container a test creates; `docker.sh down` removes them. */
export const TEST_LABEL = 'prism.test';

const PROBE_TIMEOUT_MS = Number(process.env.PRISM_TEST_PROBE_TIMEOUT_MS ?? 3000);

/** DOCKER_HOST as set, or undefined. */
export function dockerHost(): string | undefined {
  const value = process.env.DOCKER_HOST?.trim();
  return value ? value : undefined;
}

/** dockerode options for a DOCKER_HOST value (unix:///path, /path, or tcp://host:port without TLS). */
export function dockerOptions(host: string): Docker.DockerOptions {
  const options = dockerodeOptions(host);
  if (!options) throw new Error(`DOCKER_HOST=${host} is neither unix:// nor tcp://`);
  return options;
}

/** The unix socket path of DOCKER_HOST, if it is one. */
export function dockerSocketPath(): string | undefined {
  const host = dockerHost();
  if (!host) return undefined;
  return dockerOptions(host).socketPath;
}

/** A dockerode client for DOCKER_HOST. Throws when DOCKER_HOST is not set. */
export function connectDocker(): Docker {
  const host = dockerHost();
  if (!host) {
    throw new Error(
      'DOCKER_HOST is not set; run `eval "$(scripts/services/docker.sh env)"` after `scripts/services/docker.sh up`',
    );
  }
  return new Docker(dockerOptions(host));
}

export type DockerProbe =
  { ok: true; docker: Docker; host: string; serverVersion: string } | { ok: false; reason: string };

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Ask the engine at DOCKER_HOST for its version (a real request, with a timeout). */
export async function probeDocker(timeoutMs = PROBE_TIMEOUT_MS): Promise<DockerProbe> {
  const host = dockerHost();
  if (!host) {
    return {
      ok: false,
      reason:
        'DOCKER_HOST is not set (start the engine with `scripts/services/docker.sh up` and eval its `env`)',
    };
  }
  const docker = new Docker({ ...dockerOptions(host), timeout: timeoutMs });
  try {
    await docker.ping();
    const version = await docker.version();
    return { ok: true, docker: connectDocker(), host, serverVersion: version.Version };
  } catch (err) {
    return { ok: false, reason: `no Docker engine answers at DOCKER_HOST=${host}: ${describeError(err)}` };
  }
}

/** Find a local image by tag (nothing is pulled: no registry is reachable). */
export async function findLocalImage(docker: Docker, tag: string): Promise<Docker.ImageInfo | undefined> {
  const images = await docker.listImages();
  return images.find((image) => (image.RepoTags ?? []).includes(tag));
}

/** Remove a container, ignoring "no such container". */
export async function removeContainer(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true, v: true });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}
