/** Avro schemas with avsc: parsing, and the specification's schema resolution as the compatibility rule. */
import avro from 'avsc';
import { invalidSchema } from './errors.js';

export interface ParsedAvro {
  type: avro.Type;
  /** The parsed schema re-serialized: equal for schemas that differ only in layout. */
  normalized: string;
}

export function parseAvro(text: string): ParsedAvro {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw invalidSchema(`Avro schema is not JSON: ${(err as Error).message}`);
  }
  try {
    const type = avro.Type.forSchema(json as avro.Schema);
    return { type, normalized: JSON.stringify(type.schema({ exportAttrs: true })) };
  } catch (err) {
    throw invalidSchema(`Avro: ${(err as Error).message}`);
  }
}

/** Why `reader` cannot read data written with `writer` (empty when it can). */
export function avroProblems(reader: ParsedAvro, writer: ParsedAvro): string[] {
  try {
    reader.type.createResolver(writer.type);
    return [];
  } catch (err) {
    return [`Avro: ${(err as Error).message}`];
  }
}
