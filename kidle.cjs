// Measures kafkajs's idle wake-ups: setTimeout calls with a delay below 2 ms, and CPU, while idle.
const timers = require('node:timers');
let short = 0;
const orig = global.setTimeout;
global.setTimeout = function (fn, ms, ...rest) { if (typeof ms === 'number' && ms < 2) short++; return orig(fn, ms, ...rest); };
process.removeAllListeners('warning'); process.on('warning', () => {});
const { Kafka, logLevel } = require('kafkajs');
(async () => {
  const kafka = new Kafka({ brokers: (process.env.BROKERS ?? '127.0.0.1:9092').split(','), logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: 'kidle', messages: [{ value: 'x' }] });
  await new Promise((r) => orig(r, 500));
  short = 0; const c0 = process.cpuUsage(); const t0 = Date.now();
  await new Promise((r) => orig(r, 5000));
  const c = process.cpuUsage(c0); const secs = (Date.now() - t0) / 1000;
  console.log(`idle ${secs}s: ${(short / secs).toFixed(0)} short timers/s, CPU ${((c.user + c.system) / 1000 / secs).toFixed(1)} ms/s`);
  await producer.disconnect();
})();
