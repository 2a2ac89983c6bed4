/**
 * Every topic a request names (Publish, PublishBatch, Subscribe) must follow the namespace model's
 * topic syntax (src/config/topic.ts), whatever the backend.
 */
import { isValidTopic, TOPIC_PATTERN } from '../config/topic.js';
import { PrismError } from '../errors.js';

/** E_INVALID_ARGUMENT naming the topic and the rule unless `topic` matches the namespace model's syntax. */
export function checkTopic(topic: string): string {
  if (!isValidTopic(topic)) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `topic ${JSON.stringify(topic)} does not match the topic syntax ${TOPIC_PATTERN}`,
      { hint: "use 1 to 249 letters, digits, '.', '_' or '-' (no spaces, no wildcards such as '*' or '>')" },
    );
  }
  return topic;
}
