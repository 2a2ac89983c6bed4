import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { GrpcStatus, statusName } from '../../../src/transport/status-codes.js';

describe('the gRPC status codes known without grpc-js', () => {
  it("are grpc-js's, name for name and number for number", () => {
    const grpcJs = Object.fromEntries(Object.entries(status).filter(([, v]) => typeof v === 'number'));
    expect(GrpcStatus).toEqual(grpcJs);
  });

  it('name a code, and show a code outside the spec as its number', () => {
    expect(statusName(14)).toBe('UNAVAILABLE');
    expect(statusName(42)).toBe('42');
  });
});
