/**
 * A private SeaweedFS (S3-compatible) server started by a test on free loopback ports, for tests
 * that stop and restart the object store without touching the shared one (the idea of
 * private-backends.ts). It runs the binary scripts/test-services.sh built and cached under
 * ~/.cache/prism/seaweedfs/<version>/weed, with its own identity (a random key and secret in a
 * 0600 config). Objects survive `kill()` and `start()`: the data directory is kept.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import type { ProbeResult } from './services.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The cached SeaweedFS binary, newest version directory first; undefined when none was built. */
export function seaweedBinary(): string | undefined {
  const home = join(process.env.PRISM_CACHE_DIR ?? join(homedir(), '.cache/prism'), 'seaweedfs');
  if (!existsSync(home)) return undefined;
  for (const version of readdirSync(home).sort().reverse()) {
    const bin = join(home, version, 'weed');
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

export function seaweedPresence(): ProbeResult {
  return seaweedBinary() !== undefined
    ? { ok: true }
    : {
        ok: false,
        reason: 'no SeaweedFS binary in ~/.cache/prism/seaweedfs; run scripts/test-services.sh up s3 once',
      };
}

export interface PrivateS3 {
  /** `http://127.0.0.1:<port>`, without a bucket. */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Stops the server (SIGKILL: no clean shutdown). */
  kill(): Promise<void>;
  /** Starts it (again) on the same ports with the same data; resolves once S3 answers. */
  start(): Promise<void>;
}

/** A grpc port is the http port + 10000 (SeaweedFS's convention); both must be free. */
async function portPair(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 10000 < 65536) return port;
  }
}

export async function privateS3(): Promise<PrivateS3> {
  const bin = seaweedBinary();
  if (bin === undefined) throw new Error('no SeaweedFS binary in ~/.cache/prism/seaweedfs');
  const [master, volume, filer, s3] = [
    await portPair(),
    await portPair(),
    await portPair(),
    await portPair(),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'prism-private-s3-'));
  mkdirSync(join(dir, 'data'));
  const accessKeyId = `prism${randomBytes(8).toString('hex')}`;
  const secretAccessKey = randomBytes(24).toString('hex');
  const config = join(dir, 's3.json');
  writeFileSync(
    config,
    JSON.stringify({
      identities: [
        {
          name: 'prism-test',
          credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }],
          actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
        },
      ],
    }),
    { mode: 0o600 },
  );
  chmodSync(config, 0o600);
  let child: ChildProcess | undefined;
  let output = '';
  const endpoint = `http://127.0.0.1:${s3}`;
  const answers = async () => {
    try {
      // Any HTTP answer (403 without a signature) means the S3 gateway is up.
      await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1_000) });
      return true;
    } catch {
      return false;
    }
  };
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    async start() {
      output = '';
      child = spawn(
        bin,
        [
          'server',
          `-dir=${join(dir, 'data')}`,
          '-ip=127.0.0.1',
          '-ip.bind=127.0.0.1',
          `-master.port=${master}`,
          `-master.port.grpc=${master + 10000}`,
          '-master.telemetry=false',
          '-master.volumeSizeLimitMB=1024',
          '-volume.max=0',
          `-volume.port=${volume}`,
          `-volume.port.grpc=${volume + 10000}`,
          '-filer',
          `-filer.port=${filer}`,
          `-filer.port.grpc=${filer + 10000}`,
          '-s3',
          `-s3.port=${s3}`,
          `-s3.port.grpc=${s3 + 10000}`,
          '-s3.port.iceberg=0',
          '-s3.port.lance=0',
          `-s3.config=${config}`,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
      child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
      const started = Date.now();
      while (!(await answers())) {
        if (child.exitCode !== null) throw new Error(`SeaweedFS exited with ${child.exitCode}:\n${output}`);
        if (Date.now() - started > 60_000) throw new Error(`SeaweedFS did not answer in 60 s:\n${output}`);
        await sleep(200);
      }
    },
    async kill() {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGKILL');
      await exited;
    },
  };
}
