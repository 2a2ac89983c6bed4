import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeTried, engineCandidates, findEngine } from '../../../src/localstack/docker.js';

describe('where prismctl looks for a container engine', () => {
  it('asks only DOCKER_HOST when it is set', () => {
    expect(engineCandidates({ DOCKER_HOST: 'tcp://127.0.0.1:2375' })).toEqual(['tcp://127.0.0.1:2375']);
  });

  it('otherwise asks the default socket, the rootless Docker socket, then the Podman sockets', () => {
    expect(engineCandidates({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000)).toEqual([
      'unix:///var/run/docker.sock',
      'unix:///run/user/1000/docker.sock',
      'unix:///run/user/1000/podman/podman.sock',
      'unix:///run/podman/podman.sock',
    ]);
    expect(engineCandidates({}, 1001)[1]).toBe('unix:///run/user/1001/docker.sock');
  });

  it('names every socket it tried and why, when none answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prism-engine-'));
    const search = await findEngine({ DOCKER_HOST: `unix://${join(dir, 'docker.sock')}` });
    expect(search.found).toBeUndefined();
    expect(describeTried(search.tried)).toBe(`unix://${join(dir, 'docker.sock')} (no such socket)`);
  });

  it('takes the first engine that answers /_ping', async () => {
    const socket = join(mkdtempSync(join(tmpdir(), 'prism-engine-')), 'podman.sock');
    const engine = createServer((req, res) => res.end(req.url === '/_ping' ? 'OK' : ''));
    await new Promise<void>((resolve) => engine.listen(socket, resolve));
    try {
      expect((await findEngine({ DOCKER_HOST: `unix://${socket}` })).found).toEqual({
        ok: true,
        target: `unix://${socket}`,
      });
    } finally {
      await new Promise((resolve) => engine.close(resolve));
    }
  });
});
