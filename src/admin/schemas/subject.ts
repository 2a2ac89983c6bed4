import { RegistryError } from './errors.js';

/** A subject's parts: `<namespace>.<topic>-key|value` (docs/schemas.md, Subjects). */
export interface SubjectName {
  namespace: string;
  topic: string;
  part: 'key' | 'value';
}

const SUBJECT = /^([a-z][a-z0-9-]{1,62})\.(.+)-(key|value)$/;

export function parseSubject(subject: string): SubjectName {
  const match = SUBJECT.exec(subject);
  const namespace = match?.[1] ?? '';
  if (!match || namespace.endsWith('-') || namespace.includes('--') || (match[2] ?? '').trim() === '') {
    throw new RegistryError(
      42208,
      `Invalid subject '${subject}': expected <namespace>.<topic>-value or <namespace>.<topic>-key`,
    );
  }
  return { namespace, topic: match[2] as string, part: match[3] as 'key' | 'value' };
}
