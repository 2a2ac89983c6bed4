/**
 * The child's half of the launcher protocol (proto/prism/config/v1/runner_assignment.proto): the
 * assignment arrives as one JSON line on standard input, which stays open as the lifeline to the
 * proxy; "serving" goes back as one JSON line on a status file descriptor.
 */
import { fromJsonString } from '@bufbuild/protobuf';
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { getHeapStatistics } from 'node:v8';
import type { NamespaceRequest, NamespaceResponse } from '../gen/prism/config/v1/namespace_pb.js';
import { RunnerAssignmentSchema } from '../gen/prism/config/v1/runner_assignment_pb.js';
import { PrismError } from '../errors.js';

export interface Assigned {
  served: { namespace: NamespaceRequest; assignment: NamespaceResponse };
  patterns: string[];
}

/** Reads the first line of `input` as a RunnerAssignment. */
export async function readAssignment(input: Readable): Promise<Assigned> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  let first: string | undefined;
  for await (const line of lines) {
    first = line;
    break;
  }
  // The interface let go of the stream; keep it flowing so its end is seen (exitWhenParentGoes).
  input.resume();
  if (first === undefined)
    throw new PrismError('E_INPUT_UNREADABLE', 'standard input closed before a RunnerAssignment arrived');
  let message;
  try {
    message = fromJsonString(RunnerAssignmentSchema, first);
  } catch (err) {
    throw new PrismError(
      'E_INPUT_UNREADABLE',
      `standard input is not a RunnerAssignment: ${(err as Error).message}`,
    );
  }
  if (!message.namespace || !message.assignment || message.patterns.length === 0)
    throw new PrismError(
      'E_INPUT_UNREADABLE',
      'the RunnerAssignment names no namespace, assignment or pattern',
    );
  return {
    served: { namespace: message.namespace, assignment: message.assignment },
    patterns: message.patterns,
  };
}

/** Tells the launcher that every runner started and the socket is bound. */
export function reportServing(fd: number): void {
  const line = JSON.stringify({
    serving: true,
    pid: process.pid,
    heapLimitBytes: getHeapStatistics().heap_size_limit,
  });
  writeSync(fd, `${line}\n`);
}

/** Calls `stop` when the proxy's end of standard input closes: the proxy stopped or was killed. */
export function exitWhenParentGoes(input: Readable, stop: () => void): void {
  input.once('end', stop);
  input.once('close', stop);
  input.once('error', stop);
}
