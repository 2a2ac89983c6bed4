import { describe, expect, it } from 'vitest';
import { dialTarget, refuseClearTextToken } from '../../../src/transport/dial.js';
import { isLoopbackHost, parseEndpoint, splitHostPort } from '../../../src/transport/listen-address.js';

describe('endpoints as users write them', () => {
  it('reads host:port as plaintext and grpcs://host:port as TLS', () => {
    expect(parseEndpoint('localhost:8981')).toEqual({
      address: 'localhost:8981',
      host: 'localhost',
      port: 8981,
      tls: false,
    });
    expect(parseEndpoint('grpc://10.0.0.7:50090')).toEqual({
      address: '10.0.0.7:50090',
      host: '10.0.0.7',
      port: 50090,
      tls: false,
    });
    expect(parseEndpoint('grpcs://admin.internal:8981/')).toEqual({
      address: 'admin.internal:8981',
      host: 'admin.internal',
      port: 8981,
      tls: true,
    });
    expect(parseEndpoint('grpcs://[::1]:50090')).toEqual({
      address: '[::1]:50090',
      host: '::1',
      port: 50090,
      tls: true,
    });
  });

  it('refuses other schemes and addresses without a port, saying how to write them', () => {
    expect(() => parseEndpoint('https://admin:8981')).toThrow(/unknown scheme 'https:\/\/'/);
    expect(() => splitHostPort('admin')).toThrow("'admin' is not host:port");
    expect(() => splitHostPort('admin:70000')).toThrow("'admin:70000' is not host:port");
  });

  it('counts localhost, 127.0.0.0/8 and ::1 as loopback, and nothing else', () => {
    for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.8.9.10', '::1', 'api.localhost'])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['192.0.2.1', '10.0.0.1', 'example.com', '::', '0.0.0.0', 'localhost.example.com'])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  it('dials TLS for grpcs://, --tls, --ca-file or --tls-server-name, and plaintext otherwise', () => {
    expect(dialTarget('127.0.0.1:1').tls).toBe(false);
    expect(dialTarget('grpcs://127.0.0.1:1').tls).toBe(true);
    expect(dialTarget('127.0.0.1:1', { tls: true }).tls).toBe(true);
    expect(dialTarget('127.0.0.1:1', { serverName: 'prism.internal' }).tls).toBe(true);
    expect(
      dialTarget('127.0.0.1:1', { serverName: 'prism.internal' }).options['grpc.ssl_target_name_override'],
    ).toBe('prism.internal');
  });

  it('names the flag of a CA file it cannot read', () => {
    expect(() => dialTarget('grpcs://127.0.0.1:1', { caFile: '/nonexistent/ca.pem' })).toThrow(
      /^cannot read --ca-file file \/nonexistent\/ca\.pem: ENOENT/,
    );
  });
});

describe('a bearer token in clear text', () => {
  const refused = (endpoint: string, token: boolean, insecure = false) => {
    try {
      refuseClearTextToken(dialTarget(endpoint), token, insecure);
      return false;
    } catch {
      return true;
    }
  };

  it('is refused off the machine, unless --insecure', () => {
    expect(refused('192.0.2.1:50090', true)).toBe(true);
    expect(refused('grpc://prism.example.com:50090', true)).toBe(true);
    expect(refused('192.0.2.1:50090', true, true)).toBe(false);
  });

  it('is allowed on loopback, over TLS, and when there is no token', () => {
    expect(refused('127.0.0.1:50090', true)).toBe(false);
    expect(refused('localhost:50090', true)).toBe(false);
    expect(refused('grpcs://192.0.2.1:50090', true)).toBe(false);
    expect(refused('192.0.2.1:50090', false)).toBe(false);
  });
});
