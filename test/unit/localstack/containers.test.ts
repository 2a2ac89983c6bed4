import { describe, expect, it } from 'vitest';
import { loadStackConfig } from '../../../src/localstack/catalog.js';
import {
  componentPortSpecs,
  containerSpec,
  demuxLogs,
  render,
  renderContext,
} from '../../../src/localstack/containers.js';
import { REPO_ROOT } from '../../support/cli.js';

const config = (network: 'bridge' | 'host') =>
  loadStackConfig({
    packageRoot: REPO_ROOT,
    overrides: { network, stack: 'dev', ports: ['redis=16379', 'kafka.broker=19092'] },
  });
const component = (network: 'bridge' | 'host', name: string) => {
  const c = config(network);
  return {
    c,
    spec: containerSpec(
      c,
      c.components.find((x) => x.name === name)!,
    ),
  };
};

describe('a catalog component as a container', () => {
  it('on the stack network: named, labelled, ports published on 127.0.0.1 only, data in a named volume', () => {
    const { spec } = component('bridge', 'redis');
    expect(spec).toMatchObject({
      name: 'prism-dev-redis',
      Image: 'redis:7',
      Cmd: [
        'redis-server',
        '--bind',
        '0.0.0.0',
        '--port',
        '6379',
        '--protected-mode',
        'no',
        '--dir',
        '/data',
        '--appendonly',
        'yes',
      ],
      ExposedPorts: { '6379/tcp': {} },
      HostConfig: {
        NetworkMode: 'prism-dev',
        PortBindings: { '6379/tcp': [{ HostIp: '127.0.0.1', HostPort: '16379' }] },
        Mounts: [{ Type: 'volume', Source: 'prism-dev-redis-data', Target: '/data' }],
      },
      Labels: {
        'io.prism.stack': 'dev',
        'io.prism.component': 'redis',
        'io.prism.config': expect.stringMatching(/^[0-9a-f]{16}$/),
      },
    });
  });

  it('with host networking: listens on 127.0.0.1 at the host port and publishes nothing', () => {
    const { spec } = component('host', 'redis');
    expect(spec.Cmd).toContain('127.0.0.1');
    expect(spec.Cmd).toContain('16379');
    expect(spec.HostConfig?.NetworkMode).toBe('host');
    expect(spec.HostConfig?.PortBindings).toBeUndefined();
    expect(spec.ExposedPorts).toBeUndefined();
  });

  it('advertises Kafka at the host port either way, so clients on the host reach it', () => {
    for (const network of ['bridge', 'host'] as const) {
      expect(component(network, 'kafka').spec.Env).toContain(
        'KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:19092',
      );
    }
    expect(component('bridge', 'kafka').spec.Env).toContain(
      'KAFKA_LISTENERS=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093',
    );
  });

  it('reaches another container by its name on the network, and by 127.0.0.1 with host networking', () => {
    const bridge = config('bridge');
    const host = config('host');
    const vault = (c: typeof bridge) => c.components.find((x) => x.name === 'vault')!;
    expect(renderContext(bridge, vault(bridge)).host.postgres).toBe('prism-dev-postgres');
    expect(renderContext(host, vault(host)).host.postgres).toBe('127.0.0.1');
  });

  it('changes its config label when the image changes, so the container is recreated', () => {
    const a = component('bridge', 'redis').spec.Labels!['io.prism.config'];
    const other = loadStackConfig({ packageRoot: REPO_ROOT, overrides: { images: ['redis=redis:7.4'] } });
    const b = containerSpec(other, other.components[0]!).Labels!['io.prism.config'];
    expect(a).not.toBe(b);
  });

  it('names an unknown placeholder and where it is', () => {
    const ctx = { bind: '0.0.0.0', port: { redis: 6379 }, hostPort: { redis: 16379 }, host: {} };
    expect(render('{{port.redis}}/{{hostPort.redis}}/{{bind}}', ctx, 'x')).toBe('6379/16379/0.0.0.0');
    expect(() => render('--port {{port.reddis}}', ctx, 'component redis command[3]')).toThrow(
      'component redis command[3]: unknown placeholder {{port.reddis}}',
    );
  });

  it('says how to move each port: the flag and the dev.yaml key', () => {
    const nats = config('bridge').components.find((c) => c.name === 'nats')!;
    expect(componentPortSpecs(nats)).toEqual([
      {
        component: 'nats (client)',
        flag: '--port',
        port: 4222,
        fix: '--port nats.client=<port> or components.nats.ports.client in dev.yaml',
      },
      {
        component: 'nats (monitor)',
        flag: '--port',
        port: 8222,
        fix: '--port nats.monitor=<port> or components.nats.ports.monitor in dev.yaml',
      },
    ]);
  });
});

describe('container logs', () => {
  const frame = (stream: number, text: string) => {
    const body = Buffer.from(text);
    const header = Buffer.alloc(8);
    header[0] = stream;
    header.writeUInt32BE(body.length, 4);
    return Buffer.concat([header, body]);
  };

  it('joins the stdout and stderr frames of the engine stream in order', () => {
    expect(demuxLogs(Buffer.concat([frame(1, 'ready\n'), frame(2, 'warning\n'), frame(1, 'done\n')]))).toBe(
      'ready\nwarning\ndone\n',
    );
  });

  it('returns a TTY container log (not multiplexed) as it is', () => {
    expect(demuxLogs(Buffer.from('plain text log\n'))).toBe('plain text log\n');
  });
});
