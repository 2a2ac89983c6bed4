#!/usr/bin/env node
// A process that only relays bytes: it accepts connections on a Unix socket (as a launched runner
// is reached) and pipes each, both ways, to a TCP target. bench/proxy/launched.js puts it between
// the Go open-loop client and Redis to measure what one extra process hop costs on this machine
// when the hop does no work at all: the floor under the launched path's added p50. Bench only.
//   node bench/proxy/relay.js --listen /path/to.sock --to 127.0.0.1:6379
// Prints {"msg":"bench relay ready"} once listening.
import net from 'node:net';
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { listen: { type: 'string' }, to: { type: 'string' } } });
const [host, port] = [values.to.slice(0, values.to.lastIndexOf(':')), Number(values.to.split(':').pop())];
rmSync(values.listen, { force: true });
net
  .createServer((client) => {
    const target = net.connect({ host, port, noDelay: true });
    client.pipe(target).on('error', () => client.destroy());
    target.pipe(client).on('error', () => target.destroy());
    client.on('error', () => target.destroy());
    target.on('error', () => client.destroy());
  })
  .listen(values.listen, () => console.log(JSON.stringify({ msg: 'bench relay ready' })));
