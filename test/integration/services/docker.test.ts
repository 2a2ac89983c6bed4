/**
 * The test Docker engine end to end: a container from the locally built Redis image, started
 * through dockerode with host networking, answers ioredis on 127.0.0.1, and is gone afterwards.
 * Needs `scripts/services/docker.sh up` and its `env` (DOCKER_HOST, PRISM_TEST_IMAGE_REDIS).
 */
import { afterAll, expect, it } from 'vitest';
import { freePort } from '../../support/ports.js';
import { describeIfPresent } from '../../support/services.js';
import { Redis } from 'ioredis';
import type Docker from 'dockerode';
import {
  TEST_IMAGES,
  TEST_LABEL,
  findLocalImage,
  probeDocker,
  removeContainer,
} from '../../support/docker-service.js';

const engine = await probeDocker();

async function waitForRedis(port: number, container: Docker.Container, ms: number): Promise<Redis> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    const client = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
      connectTimeout: 1000,
    });
    client.on('error', (err: unknown) => {
      last = err;
    });
    try {
      await client.connect();
      return client;
    } catch (err) {
      last ??= err;
      client.disconnect();
    }
    const state = await container.inspect();
    if (!state.State.Running) {
      const logs = await container.logs({ stdout: true, stderr: true });
      throw new Error(`redis container exited (${state.State.ExitCode}): ${logs.toString()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`redis in the container did not answer on 127.0.0.1:${port}: ${String(last)}`);
}

describeIfPresent('docker', engine, 'docker engine (local images, host networking)', () => {
  const docker = engine.ok ? engine.docker : (undefined as never);
  let containerId: string | undefined;
  let redis: Redis | undefined;

  afterAll(async () => {
    redis?.disconnect();
    if (containerId) await removeContainer(docker, containerId);
  });

  it('finds the locally built redis image by tag', async () => {
    const image = await findLocalImage(docker, TEST_IMAGES.redis);
    expect(image, `image ${TEST_IMAGES.redis} (run scripts/services/docker.sh up)`).toBeDefined();
  });

  it(
    'runs redis-server in a container that ioredis reaches on 127.0.0.1',
    async () => {
      const port = await freePort();
      const container = await docker.createContainer({
        Image: TEST_IMAGES.redis,
        Cmd: ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', ''],
        Labels: { [TEST_LABEL]: '1' },
        HostConfig: { NetworkMode: 'host' },
      });
      containerId = container.id;
      await container.start();

      redis = await waitForRedis(port, container, 30_000);
      expect(await redis.ping()).toBe('PONG');
      const key = `prism:docker-test:${Date.now()}`;
      expect(await redis.set(key, 'from-the-host')).toBe('OK');
      expect(await redis.get(key)).toBe('from-the-host');
      redis.disconnect();
      redis = undefined;

      await container.stop({ t: 5 });
      await container.remove();
      await expect(container.inspect()).rejects.toMatchObject({ statusCode: 404 });
      const labelled = await docker.listContainers({
        all: true,
        filters: { label: [`${TEST_LABEL}=1`] },
      });
      expect(labelled.map((c) => c.Id)).not.toContain(containerId);
      containerId = undefined;
    },
    // vfs copies the whole image for every container: ~10-25 s on this machine's disk.
    120_000,
  );
});
