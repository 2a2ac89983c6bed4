import { describe, expect, it } from 'vitest';
import { CloseList, startOrUnwind } from '../../../src/transport/close-list.js';

describe('the close list', () => {
  it('closes in reverse order of registration, once however often it is asked', async () => {
    const closed: string[] = [];
    const list = new CloseList();
    for (const name of ['store', 'grpc', 'http']) list.add(name, () => closed.push(name));
    await Promise.all([list.close(), list.close()]);
    await list.close();
    expect(closed).toEqual(['http', 'grpc', 'store']);
  });

  it('runs every close when one fails, then reports the failure by name', async () => {
    const closed: string[] = [];
    const list = new CloseList();
    list.add('store', () => closed.push('store'));
    list.add('grpc', () => {
      throw new Error('boom');
    });
    list.add('http', () => closed.push('http'));
    await expect(list.close()).rejects.toThrow('closing grpc failed: boom');
    expect(closed).toEqual(['http', 'store']);
  });

  it('unwinds what a failed start made, and refuses registrations after closing', async () => {
    const closed: string[] = [];
    const list = new CloseList();
    await expect(
      startOrUnwind(list, async () => {
        list.add('grpc', () => closed.push('grpc'));
        throw Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' });
      }),
    ).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(closed).toEqual(['grpc']);
    expect(() => list.add('late', () => undefined)).toThrow("cannot register 'late': already closed");
  });
});
