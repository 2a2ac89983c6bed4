/**
 * The schema stage (docs/schemas.md, Enforcement): a producer with `schema: { subject, enforce }`
 * stamps every message with the schema registry id and version of the subject's latest version
 * (headers prism-schema-id / prism-schema-version, Envelope.schema_id / schema_version on
 * delivery). With `enforce` it first validates the payload against that version and refuses a
 * bad one with E_INVALID_ARGUMENT naming the field path; nothing is sent. Without `enforce` a
 * registry that cannot answer leaves the message unstamped rather than failing the publish.
 * Delivery is untouched: the consumer decodes the stamp with the rest of the envelope.
 */
import { PrismError } from '../../errors.js';
import type { Message } from '../../drivers/interfaces.js';
import { withSchema } from '../envelope.js';
import type { RunnerLogger } from '../lifecycle.js';
import type { StageFactory } from './index.js';
import type { RegisteredSchema, SchemaSource } from './schema-source.js';
import { compileValidator, type PayloadValidator } from './schema-validators.js';
import type { PayloadStage } from './stages.js';

/** Compiled validators kept per stage (a subject rarely has more than one version in use). */
const VALIDATORS_MAX = 8;
/** At most one "unstamped" warning per subject in this interval. */
const WARN_INTERVAL_MS = 60_000;

export class SchemaStage implements PayloadStage {
  readonly name = 'schema';
  private readonly validators = new Map<number, PayloadValidator>();
  private lastWarnMs = 0;

  constructor(
    private readonly subject: string,
    private readonly enforce: boolean,
    private readonly source: SchemaSource,
    private readonly logger?: RunnerLogger,
  ) {}

  async seal(message: Message): Promise<Message> {
    let schema: RegisteredSchema;
    try {
      schema = await this.source.latest(this.subject);
    } catch (err) {
      if (this.enforce) throw err;
      this.warnUnstamped(err as Error);
      return message;
    }
    if (this.enforce) {
      const problem = this.validatorOf(schema)(message.payload);
      if (problem !== undefined)
        throw new PrismError(
          'E_INVALID_ARGUMENT',
          `payload does not match schema ${this.subject} version ${schema.version} (id ${schema.id}): ${problem}`,
          { hint: `fetch the schema with: prismctl schema get ${this.subject}` },
        );
    }
    return withSchema(message, schema.id, schema.version);
  }

  open(message: Message): Promise<Message> {
    return Promise.resolve(message);
  }

  private validatorOf(schema: RegisteredSchema): PayloadValidator {
    let validator = this.validators.get(schema.id);
    if (validator) return validator;
    try {
      validator = compileValidator(schema);
    } catch (err) {
      throw new PrismError(
        'E_INTERNAL',
        `schema ${this.subject} version ${schema.version} (id ${schema.id}) cannot be used to validate: ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (this.validators.size >= VALIDATORS_MAX)
      this.validators.delete(this.validators.keys().next().value as number);
    this.validators.set(schema.id, validator);
    return validator;
  }

  private warnUnstamped(err: Error): void {
    const now = Date.now();
    if (now - this.lastWarnMs < WARN_INTERVAL_MS) return;
    this.lastWarnMs = now;
    this.logger?.warn(
      { subject: this.subject, err: err.message },
      'schema unknown; publishing without the schema stamp (enforce is off)',
    );
  }
}

/** The producer's `schema` setting; consumers read the stamp from the envelope and need no stage. */
export const schemaStageFactory: StageFactory = (input) => {
  const setting = input.reader.raw?.schema;
  if (input.type !== 'producer' || !setting || setting.subject === '') return undefined;
  if (!input.schemas)
    throw new PrismError(
      'E_UNAVAILABLE',
      `${input.label}: setting schema needs the admin's schema registry, and this runner has no admin connection`,
      { hint: 'serve the namespace through a proxy started with --admin' },
    );
  return new SchemaStage(setting.subject, setting.enforce, input.schemas, input.logger);
};
