/**
 * A delivery payload whose bytes are still arriving: the claim check fills it from the object
 * store while the proxy's Subscribe stream (grpc-http2-server.ts) already writes the answer around
 * it, so a large delivery's read from the store and its write to the subscriber overlap instead of
 * following each other.
 *
 * The payload is filled from its start, in order. A writer may send the filled part at once, but
 * holds back the payload's last byte and everything after it until the arrival is `complete`
 * (every byte in place and the claim's SHA-256 checked): a gRPC message is handed to a client only
 * when all of its bytes came, so a payload that fails part-way never reaches a subscriber as a
 * message (the call ends with an error instead, docs/messaging.md).
 */
import { allocateDeliveryPayload, LARGE_PAYLOAD_BYTES } from './large-payload-encoder.js';

/** Payloads from this size may be delivered while they arrive; smaller ones are read whole first. */
export const ARRIVING_PAYLOAD_BYTES = LARGE_PAYLOAD_BYTES;

export class PayloadArrival {
  /** Bytes in place, from the payload's start. */
  filled = 0;
  /** Settles when every byte is in place and checked (fulfilled), or when the fill failed. */
  readonly settled: Promise<void>;
  private outcome: 'arriving' | 'complete' | 'failed' = 'arriving';
  private readonly listeners = new Set<() => void>();
  private resolve!: () => void;
  private reject!: (err: unknown) => void;

  constructor(readonly payload: Uint8Array) {
    this.settled = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Whoever fills it reports the failure; a writer that never listened must not crash the process.
    this.settled.catch(() => undefined);
  }

  get arriving(): boolean {
    return this.outcome === 'arriving';
  }

  get complete(): boolean {
    return this.outcome === 'complete';
  }

  /** `n` more bytes are in place. */
  progress(n: number): void {
    this.filled += n;
    for (const listener of this.listeners) listener();
  }

  /** Every byte is in place and checked. */
  completed(): void {
    if (this.outcome !== 'arriving') return;
    this.outcome = 'complete';
    arrivals.delete(this.payload.buffer);
    this.resolve();
  }

  /** The fill failed: the payload must never reach a subscriber (it stays known as failed). */
  failed(err: unknown): void {
    if (this.outcome !== 'arriving') return;
    this.outcome = 'failed';
    this.reject(err);
  }

  /** Calls `listener` after each `progress`, until the returned function is called. */
  onProgress(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** The arrivals not complete (filling, or failed), by their payload's ArrayBuffer (one payload each). */
const arrivals = new WeakMap<ArrayBufferLike, PayloadArrival>();

/** `size` bytes to fill (at least ARRIVING_PAYLOAD_BYTES), and the arrival that tracks the fill. */
export function arrivingDeliveryPayload(size: number): PayloadArrival {
  if (size < ARRIVING_PAYLOAD_BYTES)
    throw new RangeError(`an arriving payload is at least ${ARRIVING_PAYLOAD_BYTES} bytes`);
  const arrival = new PayloadArrival(allocateDeliveryPayload(size));
  arrivals.set(arrival.payload.buffer, arrival);
  return arrival;
}

/**
 * The arrival of `bytes`' memory (a payload, or a message encoded around it) while it is not
 * complete: still filling, or failed. Undefined for a whole payload.
 */
export function arrivalOf(bytes: Uint8Array): PayloadArrival | undefined {
  return arrivals.get(bytes.buffer);
}

/**
 * A server stream that can write a message around a payload still arriving: the filled part at
 * once, the rest as it lands, and the message's last bytes only once the arrival is complete. When
 * the fill fails after part of the message went out, it ends the call with UNAVAILABLE (the
 * message is redelivered); when it fails before, it writes nothing of the message.
 */
export interface ArrivingWriter {
  writeArriving(message: unknown, arrival: PayloadArrival): void;
}
