/**
 * A private redis-server started by a test on a free loopback port (append-only file, fsync on
 * every write), for tests that stop and restart Redis without touching the shared test Redis.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { describeIfPresent, type ProbeResult } from './services.js';

export { freePort } from './ports.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function redisServerVersion(): string | undefined {
  const result = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** True when a Redis server answers PING on the port (a bare TCP connect can even reach itself). */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(1_000, () => socket.destroy());
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) socket.destroy();
    });
    socket.once('error', () => {});
    socket.once('close', () => resolve(reply.startsWith('+PONG')));
  });
}

/** A private redis-server; resolves once it accepts connections. */
export async function startRedis(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--dir',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const started = Date.now();
  while (!(await answersPing(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}):\n${output}`);
    if (Date.now() - started > 10_000)
      throw new Error(`redis-server did not listen on ${port} in 10 s:\n${output}`);
    await sleep(25);
  }
  return child;
}

export async function stopRedis(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

/** Declares a suite that starts its own redis-server: skipped, or failed under PRISM_REQUIRE_SERVICES=1, without one. */
export function describeWithRedisServer(title: string, fn: () => void): void {
  const presence: ProbeResult =
    redisServerVersion() !== undefined
      ? { ok: true }
      : {
          ok: false,
          reason:
            'redis-server is not installed (needed to start a private Redis); install the redis-server package',
        };
  describeIfPresent('redis-server', presence, title, fn);
}
