#!/usr/bin/env node
// A process that only relays bytes: it accepts connections on a Unix socket (as a launched runner
// is reached) or on 127.0.0.1:port, and pipes each, both ways, to a TCP target. bench/proxy/launched.js
// puts it between the Go open-loop client and Redis to measure what one extra process hop costs on
// this machine when the hop does no work at all (the floor under the launched path's added p50);
// bench/claim-check puts it in front of the S3 store (the floor of any proxy of the bytes). Bench only.
//   node bench/proxy/relay.js --listen /path/to.sock|127.0.0.1:0 --to 127.0.0.1:6379
// Prints {"msg":"bench relay ready","port":…} once listening (port 0 for a Unix socket).
import net from 'node:net';
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { listen: { type: 'string' }, to: { type: 'string' } } });
const hostPort = (text) => [text.slice(0, text.lastIndexOf(':')), Number(text.split(':').pop())];
const [host, port] = hostPort(values.to);
const unix = values.listen.includes('/');
if (unix) rmSync(values.listen, { force: true });
const server = net
  .createServer((client) => {
    const target = net.connect({ host, port, noDelay: true });
    client.pipe(target).on('error', () => client.destroy());
    target.pipe(client).on('error', () => target.destroy());
    client.on('error', () => target.destroy());
    target.on('error', () => client.destroy());
  })
  .listen(...(unix ? [values.listen] : hostPort(values.listen).reverse()), () =>
    console.log(JSON.stringify({ msg: 'bench relay ready', port: unix ? 0 : server.address().port })),
  );
