// Generated namespace files for the validation benchmarks (bench/validate, bench/cli): valid,
// varied (backends, auth on every third file), one namespace per file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function generateFiles(target, count) {
  mkdirSync(target, { recursive: true });
  const backends = ['redis', 'postgres', 'sqlite', 'memstore'];
  for (let i = 0; i < count; i++) {
    const name = `ns-${i}`;
    const secure = i % 3 === 0;
    const text = `namespace: bench-${i}
team: team-${i % 17}
description: Generated namespace ${name}
needs: { durability: ${i % 2 ? 'strong' : 'eventual'}, write_rps: ${i}, retention: 7d }
patterns:
  - name: cache
    type: keyvalue
    slots:
      store: { backend: ${backends[i % 2 ? i % 2 : i % 4]} }
    settings: { default_ttl: 15m, max_value_size: 1MiB }
  - name: events
    type: producer
    slots:
      sink: { backend: ${i % 2 ? 'kafka' : 'nats'} }
    settings: { topic: bench.${i}.events, max_retries: 3 }
  - name: worker
    type: consumer
    slots:
      source: { backend: kafka }
      state: { backend: postgres }
      dead-letter: { backend: kafka }
    settings: { topic: bench.${i}.events, consumer_group: g${i} }
${
  secure
    ? `  - name: sessions
    type: session-manager
    slots:
      store: { backend: redis }
auth:
  enabled: true
  issuer: https://login.example.com
  audiences: [prismctl]
  vault: { enabled: true, address: http://localhost:8200, role: prism-${i} }
`
    : ''
}access:
  owners: [{ team: team-${i % 17} }]
  consumers:
    - { subject: "group:readers", permissions: [read] }
metadata: { index: "${i}" }
`;
    writeFileSync(join(target, `ns-${String(i).padStart(5, '0')}.yaml`), text);
  }
}
