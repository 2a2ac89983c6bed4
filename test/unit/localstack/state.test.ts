import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readState, stackAlive, uptime, writeState, type DevState } from '../../../src/localstack/state.js';

function state(overrides: Partial<DevState> = {}): DevState {
  return {
    stack: 'embedded',
    pid: 4242,
    phase: 'ready',
    host: '127.0.0.1',
    ports: { admin: 8981, adminMetrics: 8982, proxy: 50090, proxyMetrics: 50091, idp: 5556 },
    startedAt: '2025-01-01T00:00:00.000Z',
    persist: false,
    dataDir: '/tmp/x',
    logFile: '/tmp/x.log',
    foreground: false,
    namespaces: ['playground'],
    skipped: [],
    ...overrides,
  };
}

describe('the dev state file', () => {
  it('is written readable by its owner only and read back unchanged', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'prism-state-')), 'state.json');
    writeState(state(), file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readState(file)).toEqual(state());
  });

  it('reads as absent when missing', () => {
    expect(readState(join(tmpdir(), 'no-such-prism-state.json'))).toBeUndefined();
  });

  it('does not take an unrelated live process for the stack', () => {
    expect(stackAlive(process.pid)).toBe(false);
  });

  it('tells uptime in seconds, minutes and hours', () => {
    const start = Date.parse('2025-01-01T00:00:00.000Z');
    expect(uptime(state(), start + 42_000)).toBe('42s');
    expect(uptime(state(), start + 187_000)).toBe('3m7s');
    expect(uptime(state(), start + 7_500_000)).toBe('2h5m');
  });
});
