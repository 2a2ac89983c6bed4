/**
 * The child's half of the launcher protocol (proto/prism/config/v1/runner_assignment.proto), run
 * as the proxy runs it: the assignment on standard input, "serving" on fd 3, the Unix socket, and
 * an exit as soon as standard input closes.
 */
import { create, toJsonString } from '@bufbuild/protobuf';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import { KeyValue } from '../../../src/gen/prism/data/v1/keyvalue_pb.js';
import { RemoteRunner } from '../../../src/proxy/remote-runner.js';
import { GrpcHttp2Channel } from '../../../src/client/grpc-http2.js';
import { grpcServiceDefinition } from '../../../src/transport/service-definition.js';
import {
  NamespaceRequestSchema,
  NamespaceResponseSchema,
} from '../../../src/gen/prism/config/v1/namespace_pb.js';
import { RunnerAssignmentSchema } from '../../../src/gen/prism/config/v1/runner_assignment_pb.js';
import { ensureBuilt, REPO_ROOT } from '../../support/cli.js';

const namespace = `assigned-${process.pid}`;

function assignmentLine(patterns: string[]): string {
  const message = create(RunnerAssignmentSchema, {
    namespace: create(NamespaceRequestSchema, {
      namespace,
      team: 'platform',
      patterns: [{ name: 'cache', type: 'keyvalue', slots: { store: { backend: 'memstore' } } }],
    }),
    assignment: create(NamespaceResponseSchema, {
      namespace,
      version: 1n,
      patterns: [
        {
          name: 'cache',
          type: 'keyvalue',
          version: 'v1',
          slots: [{ slot: 'store', backend: 'memstore', endpoint: 'memory://' }],
        },
      ],
    }),
    patterns,
  });
  return `${toJsonString(RunnerAssignmentSchema, message)}\n`;
}

function launch(socket: string) {
  const child = spawn(
    process.execPath,
    [
      join(REPO_ROOT, 'bin/run.js'),
      'runner',
      'serve',
      '--assignment-stdin',
      '--listen',
      `unix:${socket}`,
      '--status-fd',
      '3',
      '--log-level',
      'warn',
    ],
    {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, PRISM_HOME: mkdtempSync(join(tmpdir(), 'prism-home-')) },
    },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const status = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdio[3] as Readable }).once('line', (line) =>
      resolve(JSON.parse(line) as Record<string, unknown>),
    );
    void exited.then(() => reject(new Error(`exited before serving:\n${output}`)));
  });
  status.catch(() => undefined);
  return { child, exited, status, output: () => output };
}

describe('runner serve --assignment-stdin', () => {
  beforeAll(() => ensureBuilt());

  it('serves the assigned pattern on its Unix socket, reports serving on fd 3, and exits when stdin closes', async () => {
    const socket = join(mkdtempSync(join(tmpdir(), 'prism-ra-')), 'r.sock');
    const runner = launch(socket);
    runner.child.stdin!.write(assignmentLine(['cache']));
    const status = await runner.status;
    expect([status.serving, status.pid]).toEqual([true, runner.child.pid]);
    expect(status.heapLimitBytes).toBeGreaterThan(0);
    const KeyValueClient = makeGenericClientConstructor(grpcServiceDefinition(KeyValue), 'KeyValue');
    const keyValue = new KeyValueClient(`unix:${socket}`, credentials.createInsecure());
    const unary = GrpcHttp2Channel.to({ socketPath: socket });
    const kv = new RemoteRunner(
      namespace,
      'cache',
      'keyvalue',
      {
        clients: () => ({
          unary,
          keyValue: keyValue as never,
          producer: undefined as never,
          consumer: undefined as never,
          health: undefined as never,
        }),
        serving: async () => {},
      },
      { acquire: async () => {}, release: async () => {} },
    );
    try {
      await kv.set('k', Buffer.from('v'));
      expect(Buffer.from((await kv.get('k'))!).toString()).toBe('v');
    } finally {
      keyValue.close();
      unary.close();
    }
    runner.child.stdin!.end();
    expect(await runner.exited).toBe(0);
  });

  it('refuses an assignment that is not a RunnerAssignment, naming what it read', async () => {
    const runner = launch(join(mkdtempSync(join(tmpdir(), 'prism-ra-')), 'r.sock'));
    runner.child.stdin!.write('{"namespace": 7}\n');
    expect(await runner.exited).not.toBe(0);
    expect(runner.output()).toContain('standard input is not a RunnerAssignment');
  });

  it('refuses a pattern the assignment does not have', async () => {
    const runner = launch(join(mkdtempSync(join(tmpdir(), 'prism-ra-')), 'r.sock'));
    runner.child.stdin!.write(assignmentLine(['ghost']));
    expect(await runner.exited).not.toBe(0);
    expect(runner.output()).toContain(`namespace '${namespace}' has no assigned pattern 'ghost'`);
  });
});
