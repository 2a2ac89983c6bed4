/** Gathering a PublishUpload's chunks into one payload, for the runners and stages that need it whole. */
import { createHash } from 'node:crypto';
import { PrismError } from '../../errors.js';

/**
 * The upload's bytes in one buffer of its declared `size`: E_INVALID_ARGUMENT when the chunks add
 * up to more or fewer bytes, or hash to other than an announced `sha256`.
 */
/** An upload no claim check takes is one message: it must fit the proxy's message limit. */
export function refuseInlineOver(size: number, maxInlineBytes: number): void {
  if (size <= maxInlineBytes) return;
  throw new PrismError(
    'E_PAYLOAD_TOO_LARGE',
    `payload is ${size} bytes and no claim check stores it; the proxy's message limit is ${maxInlineBytes} bytes (--max-message-size)`,
    { hint: 'give the producer a claim_check with a threshold below the limit, or raise --max-message-size' },
  );
}

export async function gatherUpload(
  chunks: AsyncIterable<Uint8Array>,
  size: number,
  sha256?: string,
): Promise<Uint8Array> {
  const payload = Buffer.allocUnsafe(size);
  let received = 0;
  for await (const chunk of chunks) {
    if (received + chunk.byteLength > size) {
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `the upload announced ${size} bytes and sent more than ${size}; nothing was published`,
      );
    }
    payload.set(chunk, received);
    received += chunk.byteLength;
  }
  if (received !== size) {
    throw new PrismError(
      'E_INVALID_ARGUMENT',
      `the upload announced ${size} bytes and sent ${received}; nothing was published`,
    );
  }
  if (sha256 !== undefined) {
    const actual = createHash('sha256').update(payload).digest('hex');
    if (actual !== sha256.toLowerCase()) {
      throw new PrismError(
        'E_INVALID_ARGUMENT',
        `the upload announced sha256 ${sha256} and its bytes hash to ${actual}; nothing was published`,
        { hint: 'the bytes changed on the way, or the announced hash is of other bytes' },
      );
    }
  }
  return payload;
}
