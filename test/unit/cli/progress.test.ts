import { describe, expect, it } from 'vitest';
import { createProgress } from '../../../src/cli/progress.js';

describe('progress of the stack components', () => {
  it('writes one plain line per update when not on a TTY', async () => {
    const lines: string[] = [];
    const progress = await createProgress(['redis', 'nats'], { tty: false, write: (l) => lines.push(l) });
    progress.events.status('redis', 'creating prism-dev-redis from redis:7');
    progress.events.status('redis', 'healthy (PONG)');
    progress.events.status('nats', 'already running and healthy ({"status":"ok"})');
    await progress.finish();
    expect(lines).toEqual([
      '[redis] creating prism-dev-redis from redis:7',
      '[redis] healthy (PONG)',
      '[nats] already running and healthy ({"status":"ok"})',
    ]);
  });

  it('on a TTY (listr2), finishes once every step reports healthy or already running', async () => {
    const progress = await createProgress(['redis', 'nats'], { tty: true, write: () => undefined });
    progress.events.status('redis', 'healthy (PONG)');
    progress.events.status('nats', 'already running and healthy');
    progress.events.status('unknown', 'ignored');
    await expect(progress.finish()).resolves.toBeUndefined();
  });

  it('on a TTY, a failed run ends the display without hanging on the steps still pending', async () => {
    const progress = await createProgress(['redis', 'postgres'], { tty: true, write: () => undefined });
    progress.events.status('redis', 'healthy (PONG)');
    progress.events.status('postgres', 'waiting for postgres probe on 127.0.0.1:5432');
    await expect(progress.finish(true)).resolves.toBeUndefined();
  });
});
