#!/usr/bin/env node
// Diagnostic (not a test): what a bare node:http2 server, with no code of ours in it, leaves for
// V8's old generation per request, on each Node runtime given. Each runtime runs a server that
// answers every stream at once (a gRPC-shaped 200, one message, trailers) with
// `--max-semi-space-size=8 --trace-gc-nvp`; h2load sends `--rate` requests a second on one
// connection for `--seconds`; the server's young-generation collections are summed from its trace.
// It prints, per runtime: the bytes promoted per request, the scavenges and mark-compacts, the
// longest mark-compact pause and the part of it spent clearing external strings, and whether a
// request's header values are allocated in the young generation.
//
// Why: at 1,000 calls/s the proxy's p99.9 tail is the mark-compacts' pause (bench/RESULTS.md,
// sessions 18 and 20), and how often they come depends on what each call leaves in the old
// generation. A runtime that promotes most of every request is a floor no code of ours removes.
// Node 24.15.0 is the first release that does (bench/RESULTS.md, session 21: 24.14.1 promotes
// 66–77 B a request, 24.15.0 to 24.19.0 about 1–1.4 KB).
//
//   node bench/proxy/http2-retention.js [--rate 1000] [--seconds 10] [--node /usr/bin/node ...]
// Needs h2load (bench/proxy/setup.sh). Everything listens on 127.0.0.1.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gcTraceField, grpcFrame, h2load, loadAverage, machine, runProcess } from './lib.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    node: { type: 'string', multiple: true, default: [] },
  },
});
const runtimes = [process.execPath, ...values.node];
/** One gRPC-framed message (a string field "k"): the request h2load sends and the server's answer. */
const MESSAGE = grpcFrame(Buffer.from([10, 1, 107]));

// The server: CommonJS for `node -e`; it prints its port, then whether a header value is young.
const SERVER = `
const http2 = require('node:http2');
const inYoung = new Function('v', 'return %InYoungGeneration(v)');
const body = Buffer.from(${JSON.stringify([...MESSAGE])});
let told = false;
const server = http2.createServer();
server.on('stream', (stream, headers) => {
  if (!told) { told = true; process.stderr.write('header value young: ' + inYoung(headers[':path']) + '\\n'); }
  stream.on('error', () => {});
  stream.on('data', () => {});
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(body);
  });
});
server.listen(0, '127.0.0.1', () => process.stderr.write('port ' + server.address().port + '\\n'));
`;

const work = mkdtempSync(join(tmpdir(), 'prism-http2-retention-'));
const bodyFile = join(work, 'body.bin');
writeFileSync(bodyFile, MESSAGE);

async function measure(node) {
  const child = spawn(
    node,
    ['--max-semi-space-size=8', '--trace-gc-nvp', '--allow-natives-syntax', '-e', SERVER],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let trace = '';
  let err = '';
  child.stdout.on('data', (d) => (trace += d));
  const port = await new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      err += d;
      const m = /port (\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${node}: server exited (${code})\n${err}`)));
  });
  const version = (await runProcess(node, ['--version'])).stdout.trim();
  const start = trace.length;
  const { succeeded: requests } = await h2load({
    port,
    path: '/bench.Retention/Call',
    bodyFile,
    seconds: Number(values.seconds),
    connections: 1,
    streams: 4,
    extra: ['--rps', values.rate],
  });
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  let promoted = 0;
  let scavenges = 0;
  const markCompacts = [];
  for (const line of trace.slice(start).split('\n')) {
    if (/ gc=s /.test(line)) {
      scavenges++;
      promoted += gcTraceField(line, 'promoted');
    } else if (/ gc=mc /.test(line))
      markCompacts.push({
        pause: gcTraceField(line, 'pause'),
        externalStrings: gcTraceField(line, 'clear.external_string_table'),
      });
  }
  const longest = markCompacts.sort((a, b) => b.pause - a.pause)[0];
  return {
    node: `${node} (${version})`,
    requests,
    promotedPerRequest: Math.round(promoted / requests),
    scavenges,
    markCompacts: markCompacts.length,
    longestMarkCompactMs: longest?.pause,
    ofItExternalStringsMs: longest?.externalStrings,
    headerValueYoung: /header value young: (\w+)/.exec(err)?.[1],
  };
}

const m = machine();
console.log(
  `machine: ${m.cores} × ${m.model}, load ${loadAverage()}; ${values.rate} requests/s for ${values.seconds} s`,
);
for (const node of runtimes) {
  const r = await measure(node);
  console.log(
    `${r.node}: ${r.requests} requests, promoted ${r.promotedPerRequest} B/request, ${r.scavenges} scavenges, ` +
      `${r.markCompacts} mark-compacts (longest ${r.longestMarkCompactMs ?? '-'} ms, of it clearing external strings ${r.ofItExternalStringsMs ?? '-'} ms), ` +
      `header values allocated ${r.headerValueYoung === 'true' ? 'young' : 'old'}`,
  );
}
