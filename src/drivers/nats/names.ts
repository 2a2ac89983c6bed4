/**
 * Subject, stream and consumer names for a namespace's topics on NATS.
 *
 * pubsub: core NATS subject `prism.<namespace>.<topic>`
 * queue:  JetStream subject `prismq.<namespace>.<topic>`, stored in the stream `PRISMQ_<namespace>`
 *         (subjects `prismq.<namespace>.>`); one durable consumer per (group, topic).
 * The two subject roots differ so pub/sub traffic is never written to the stream.
 */
import { createHash } from 'node:crypto';

const SUBJECT_SAFE = /^[A-Za-z0-9_\-.]$/;

/** Encodes a topic as subject tokens: `.` stays a separator; other unsafe characters become %XX. */
export function topicSubject(topic: string): string {
  const keepDots = topic.length > 0 && !topic.split('.').some((t) => t === '');
  let out = '';
  for (const ch of topic) {
    if (SUBJECT_SAFE.test(ch) && (ch !== '.' || keepDots)) {
      out += ch;
    } else {
      for (const byte of Buffer.from(ch, 'utf8'))
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out === '' ? '%' : out;
}

function safeName(raw: string): string {
  const clean = raw.replace(/[^A-Za-z0-9_-]/g, '_');
  if (clean === raw && clean.length <= 48) return clean;
  return `${clean.slice(0, 48)}_${createHash('sha256').update(raw).digest('hex').slice(0, 10)}`;
}

export function pubsubSubject(namespace: string, topic: string): string {
  return `prism.${safeName(namespace)}.${topicSubject(topic)}`;
}

export function queueSubject(namespace: string, topic: string): string {
  return `prismq.${safeName(namespace)}.${topicSubject(topic)}`;
}

export function streamName(namespace: string): string {
  return `PRISMQ_${safeName(namespace)}`;
}

export function streamSubjects(namespace: string): string {
  return `prismq.${safeName(namespace)}.>`;
}

/**
 * `<group>__<topic>`, made safe. A pair whose join could also come from another pair (a `__`
 * inside either name, a group ending or a topic starting with `_`: `x__y` + `z` and `x` + `y__z`
 * both join to `x__y__z`) always gets the hash suffix, so two groups never share a durable
 * consumer; every other name stays as it was.
 */
export function durableName(group: string, topic: string): string {
  const raw = `${group}__${topic}`;
  const ambiguous =
    group.includes('__') || topic.includes('__') || group.endsWith('_') || topic.startsWith('_');
  return ambiguous ? hashedName(`${group}\u0000${topic}`, raw) : safeName(raw);
}

function hashedName(identity: string, raw: string): string {
  const clean = raw.replace(/[^A-Za-z0-9_-]/g, '_');
  return `${clean.slice(0, 48)}_${createHash('sha256').update(identity).digest('hex').slice(0, 10)}`;
}
