import { isIP } from 'node:net';
import { PrismError } from '../errors.js';

/** `host:port` or `[v6]:port` → [host, port]; port 0 picks a free port. */
export function splitHostPort(address: string): [string, number] {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  const port = Number(match?.[2]);
  if (!match || !match[1] || port > 65_535) {
    throw new PrismError('E_USAGE', `'${address}' is not host:port`, {
      hint: 'write it as 127.0.0.1:50090, localhost:50090 or [::1]:50090',
    });
  }
  return [match[1], port];
}

/** A listen address as grpc-js binds it (IPv6 hosts in brackets). */
export function listenAddress(address: string): string {
  const [host, port] = splitHostPort(address);
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export interface Endpoint {
  /** host:port as grpc-js dials it. */
  address: string;
  host: string;
  port: number;
  /** The endpoint was written `grpcs://host:port`. */
  tls: boolean;
}

/**
 * An endpoint as users write it: `host:port`, `grpc://host:port` (plaintext) or
 * `grpcs://host:port` (TLS).
 */
export function parseEndpoint(text: string): Endpoint {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  const rest = scheme ? text.slice(scheme[0].length).replace(/\/$/, '') : text;
  const name = scheme?.[1]?.toLowerCase();
  if (name !== undefined && name !== 'grpc' && name !== 'grpcs') {
    throw new PrismError('E_USAGE', `'${text}': unknown scheme '${name}://'`, {
      hint: 'write host:port, grpc://host:port (plaintext) or grpcs://host:port (TLS)',
    });
  }
  const [host, port] = splitHostPort(rest);
  return { address: listenAddress(rest), host, port, tls: name === 'grpcs' };
}

/** localhost, 127.0.0.0/8 and ::1: traffic that never leaves the machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}
