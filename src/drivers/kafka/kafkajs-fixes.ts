/**
 * Everything the Kafka driver changes in kafkajs 2.2.4, applied once per process: the idle request
 * queue (request-queue-fix.ts), consumers' fetch pacing (fetch-pacing.ts), and the record encoder, batch checksum and record decoder put in
 * kafkajs's place (record-encoder.ts, crc32c.ts, record-decoder.ts). The driver calls it, and so
 * does bench/proxy/stream.js to give its raw kafkajs cell the same client.
 */
import { useSlicedKafkaCrc32c } from './crc32c.js';
import { paceKafkajsFetches } from './fetch-pacing.js';
import { useLeanKafkaRecordDecoder } from './record-decoder.js';
import { useOneBufferKafkaRecords } from './record-encoder.js';
import { fixKafkajsIdleWakeups } from './request-queue-fix.js';

/** Applies every kafkajs fix; true when all three module replacements took. */
export function fixKafkajs(): boolean {
  fixKafkajsIdleWakeups();
  paceKafkajsFetches();
  const encoder = useOneBufferKafkaRecords();
  const checksum = useSlicedKafkaCrc32c();
  const decoder = useLeanKafkaRecordDecoder();
  return encoder && checksum && decoder;
}
