import type { NamespaceRequest } from '../../gen/prism/config/v1/namespace_pb.js';
import type { ActionSpec } from './model.js';
import type { PolicyResource } from './policy-set.js';

interface Keyed {
  key?: unknown;
  keys?: unknown;
  items?: unknown;
  prefix?: unknown;
  topic?: unknown;
  messages?: unknown;
}

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];

/**
 * The resources one data-plane call touches, from its request: a key (Scan: the prefix), each key
 * of a batch, a topic (the request's, else the pattern's `topic` setting), each message's topic
 * of a PublishBatch, or the namespace itself. An empty batch is decided once, for an empty key.
 */
export function dataResources(
  ns: NamespaceRequest,
  pattern: string,
  method: string,
  action: ActionSpec,
  request: unknown,
): PolicyResource[] {
  const base = { namespace: ns.namespace, team: ns.team, pattern };
  const req = (request ?? {}) as Keyed;
  if (action.resource === 'Key') {
    let keys: string[];
    if (method === 'Scan') keys = [typeof req.prefix === 'string' ? req.prefix : ''];
    else if (method === 'BatchSet')
      keys = Array.isArray(req.items) ? strings(req.items.map((item) => (item as Keyed).key)) : [];
    else if (Array.isArray(req.keys)) keys = strings(req.keys);
    else keys = [typeof req.key === 'string' ? req.key : ''];
    if (keys.length === 0) keys = [''];
    return [...new Set(keys)].map((key) => ({ kind: 'Key', ...base, key }));
  }
  if (action.resource === 'Topic') {
    const fallback = ns.patterns.find((p) => p.name === pattern)?.settings?.topic ?? '';
    const topicOf = (t: unknown) => (typeof t === 'string' && t !== '' ? t : fallback);
    const topics = Array.isArray(req.messages)
      ? req.messages.map((m) => topicOf((m as Keyed).topic))
      : [topicOf(req.topic)];
    if (topics.length === 0) topics.push(fallback);
    return [...new Set(topics)].map((topic) => ({ kind: 'Topic', ...base, topic }));
  }
  return [{ kind: 'Namespace', ...base }];
}
