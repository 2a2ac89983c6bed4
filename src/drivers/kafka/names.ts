/**
 * Kafka names for a namespace: topic `prism.<namespace>.<topic>`, queue group
 * `prism.<namespace>.<group>`, pub/sub group `prism.<namespace>.ps.<random>` (one per subscriber).
 * Kafka allows [A-Za-z0-9._-] and at most 249 characters in a topic name; anything else is
 * replaced with '_' and a hash of the original is appended so two topics never collide.
 */
import { createHash } from 'node:crypto';

function safe(raw: string, max: number): string {
  const clean = raw.replace(/[^A-Za-z0-9._-]/g, '_');
  if (clean === raw && clean.length <= max) return clean;
  return `${clean.slice(0, max - 11)}_${createHash('sha256').update(raw).digest('hex').slice(0, 10)}`;
}

export function kafkaTopic(namespace: string, topic: string): string {
  return safe(`prism.${namespace}.${topic}`, 249);
}

export function kafkaGroup(namespace: string, group: string): string {
  return safe(`prism.${namespace}.${group}`, 249);
}

/** Brokers from `kafka://host:port,host:port` or a plain `host:port,...` list. */
export function kafkaBrokersFrom(endpoint: string): string[] {
  return endpoint
    .replace(/^kafka:\/\//, '')
    .split(',')
    .map((b) => b.trim().replace(/\/.*$/, ''))
    .filter((b) => b !== '');
}
