/**
 * Garbage collection on demand, for large uploads (src/proxy/publish-upload.ts, and the S3
 * driver's multipart parts in src/drivers/objects/s3.ts). The frames of a large upload (buffers of up
 * to 256 KiB) die young, but V8 frees an ArrayBuffer's memory only when a collection finds it
 * dead, and the little JavaScript an upload allocates triggers none for hundreds of MiB:
 * measured on Node 24, 300 dropped 1 MiB buffers grew the RSS by 74 MiB, and by 10 MiB with a
 * minor GC every 5 MiB (about a millisecond each). The object store's part buffers (5 MiB) live
 * long enough to be promoted to the old generation, so the driver runs an occasional major GC,
 * asynchronously (incremental marking), to free those. `gc` is exposed in a context of its own
 * (vm), never on the proxy's global object.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => unknown;

let gc: Gc | null | undefined;

function exposed(): Gc | null {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as Gc;
    } catch {
      gc = null;
    }
  }
  return gc;
}

/** Runs a minor GC; does nothing when this runtime does not offer one. */
export function collectYoung(): void {
  exposed()?.({ type: 'minor' });
}

/** Starts a major GC that runs alongside (incremental marking); does nothing without one. */
export function collectOld(): void {
  const started = exposed()?.({ type: 'major', execution: 'async' });
  if (started instanceof Promise) started.catch(() => undefined);
}
