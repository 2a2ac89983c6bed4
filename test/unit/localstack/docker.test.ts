import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { engineCandidates, pingDocker } from '../../../src/localstack/docker.js';

describe('finding a Docker engine', () => {
  it('asks DOCKER_HOST, else the default socket', () => {
    expect(engineCandidates({ DOCKER_HOST: 'tcp://10.0.0.2:2375' })[0]).toBe('tcp://10.0.0.2:2375');
    expect(engineCandidates({})[0]).toBe('unix:///var/run/docker.sock');
  });

  it('says there is no such socket when nothing listens there', async () => {
    const socket = join(mkdtempSync(join(tmpdir(), 'prism-docker-')), 'docker.sock');
    expect(await pingDocker(`unix://${socket}`)).toEqual({
      ok: false,
      target: `unix://${socket}`,
      reason: 'no such socket',
    });
  });

  it('accepts an engine that answers /_ping with OK', async () => {
    const socket = join(mkdtempSync(join(tmpdir(), 'prism-docker-')), 'docker.sock');
    const engine = createServer((req, res) => res.end(req.url === '/_ping' ? 'OK' : ''));
    await new Promise<void>((resolve) => engine.listen(socket, resolve));
    try {
      expect(await pingDocker(`unix://${socket}`)).toEqual({ ok: true, target: `unix://${socket}` });
    } finally {
      await new Promise((resolve) => engine.close(resolve));
    }
  });
});
