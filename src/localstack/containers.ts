/**
 * How a catalog component becomes a container: names, labels, placeholders, port bindings and
 * volumes. Pure functions; docker-stack.ts does the talking to the engine.
 */
import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { PrismError } from '../errors.js';
import type { ComponentSpec, StackConfig } from './catalog.js';
import { DEV_HOST, type PortSpec } from './ports.js';

export const LABEL_STACK = 'io.prism.stack';
export const LABEL_COMPONENT = 'io.prism.component';
/** A hash of everything the container was created from; a change means it must be recreated. */
export const LABEL_CONFIG = 'io.prism.config';

export function containerName(stack: string, component: string): string {
  return `prism-${stack}-${component}`;
}

export function networkName(stack: string): string {
  return `prism-${stack}`;
}

export function volumeName(stack: string, component: string): string {
  return `prism-${stack}-${component}-data`;
}

export interface RenderContext {
  bind: string;
  port: Record<string, number>;
  hostPort: Record<string, number>;
  host: Record<string, string>;
}

/** The placeholders of one component in one stack (see templates/dev/components.yaml). */
export function renderContext(config: StackConfig, component: ComponentSpec): RenderContext {
  const hostNetwork = config.network === 'host';
  return {
    bind: hostNetwork ? DEV_HOST : '0.0.0.0',
    port: hostNetwork ? component.ports : component.containerPorts,
    hostPort: component.ports,
    host: Object.fromEntries(
      config.components.map((c) => [c.name, hostNetwork ? DEV_HOST : containerName(config.stack, c.name)]),
    ),
  };
}

const PLACEHOLDER = /\{\{\s*([A-Za-z]+)(?:\.([A-Za-z0-9_-]+))?\s*\}\}/g;

/** Fills {{bind}}, {{port.x}}, {{hostPort.x}} and {{host.x}}; an unknown one names where it is. */
export function render(text: string, ctx: RenderContext, where: string): string {
  return text.replace(PLACEHOLDER, (whole, kind: string, key: string | undefined) => {
    let value: string | number | undefined;
    if (kind === 'bind' && key === undefined) value = ctx.bind;
    else if ((kind === 'port' || kind === 'hostPort' || kind === 'host') && key !== undefined)
      value = ctx[kind][key];
    if (value === undefined) {
      throw new PrismError('E_USAGE', `${where}: unknown placeholder ${whole}`, {
        hint: 'placeholders are {{bind}}, {{port.NAME}}, {{hostPort.NAME}} and {{host.COMPONENT}}',
      });
    }
    return String(value);
  });
}

/** The engine's create options for a component; labels carry the stack, component and config hash. */
export function containerSpec(config: StackConfig, component: ComponentSpec): Docker.ContainerCreateOptions {
  const ctx = renderContext(config, component);
  const where = `component ${component.name}`;
  const cmd = component.command?.map((arg, i) => render(arg, ctx, `${where} command[${i}]`));
  const env = Object.entries(component.env).map(([k, v]) => `${k}=${render(v, ctx, `${where} env.${k}`)}`);
  const hostNetwork = config.network === 'host';
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  if (!hostNetwork) {
    for (const [name, hostPort] of Object.entries(component.ports)) {
      const key = `${component.containerPorts[name]}/tcp`;
      exposed[key] = {};
      bindings[key] = [{ HostIp: DEV_HOST, HostPort: String(hostPort) }];
    }
  }
  const spec: Docker.ContainerCreateOptions = {
    name: containerName(config.stack, component.name),
    Image: component.image,
    ...(cmd ? { Cmd: cmd } : {}),
    Env: env,
    ...(component.user !== undefined ? { User: component.user } : {}),
    ...(hostNetwork ? {} : { ExposedPorts: exposed }),
    HostConfig: {
      NetworkMode: hostNetwork ? 'host' : networkName(config.stack),
      ...(hostNetwork ? {} : { PortBindings: bindings }),
      ...(component.volume
        ? {
            Mounts: [
              { Type: 'volume', Source: volumeName(config.stack, component.name), Target: component.volume },
            ],
          }
        : {}),
    },
    Labels: { [LABEL_STACK]: config.stack, [LABEL_COMPONENT]: component.name },
  };
  const hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
  spec.Labels![LABEL_CONFIG] = hash;
  return spec;
}

/** Each host port a component needs, with how to move it (flag and dev.yaml key). */
export function componentPortSpecs(component: ComponentSpec): PortSpec[] {
  const names = Object.keys(component.ports);
  return names.map((p) => {
    const flagKey = names.length === 1 ? component.name : `${component.name}.${p}`;
    return {
      component: names.length === 1 ? component.name : `${component.name} (${p})`,
      flag: '--port',
      port: component.ports[p]!,
      fix: `--port ${flagKey}=<port> or components.${component.name}.ports.${p} in dev.yaml`,
    };
  });
}

/**
 * Splits the engine's multiplexed log stream (8-byte frame headers: stream, 0, 0, 0, size) into
 * text. A TTY container's logs are not multiplexed and come back as they are.
 */
export function demuxLogs(buffer: Buffer): string {
  let out = '';
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const type = buffer[offset];
    if ((type !== 0 && type !== 1 && type !== 2) || buffer.readUIntBE(offset + 1, 3) !== 0) {
      return buffer.toString('utf8');
    }
    const size = buffer.readUInt32BE(offset + 4);
    out += buffer.subarray(offset + 8, offset + 8 + size).toString('utf8');
    offset += 8 + size;
  }
  return offset === 0 && buffer.length > 0 ? buffer.toString('utf8') : out;
}
