/**
 * The topic syntax of the namespace model, read from the one place it is written: the
 * `field_schema.pattern` of `PatternSettings.topic` in proto/prism/config/v1/namespace.proto (the
 * JSON Schema that validates namespace files is generated from the same option). The runners check
 * every topic a request names against it (src/runners/topic.ts), so no backend sees a topic a
 * namespace file could not declare.
 */
import { getOption, hasOption } from '@bufbuild/protobuf';
import { field_schema } from '../gen/prism/common/v1/options_pb.js';
import { PatternSettingsSchema } from '../gen/prism/config/v1/namespace_pb.js';

function topicPattern(): string {
  const field = PatternSettingsSchema.fields.find((f) => f.name === 'topic');
  const pattern = field && hasOption(field, field_schema) ? getOption(field, field_schema).pattern : '';
  if (!pattern) throw new Error('prism.config.v1.PatternSettings.topic carries no field_schema pattern');
  return pattern;
}

/** The rule as written in the proto, e.g. `^[A-Za-z0-9._-]{1,249}$`. */
export const TOPIC_PATTERN: string = topicPattern();
const TOPIC = new RegExp(TOPIC_PATTERN);

export function isValidTopic(topic: string): boolean {
  return TOPIC.test(topic);
}
