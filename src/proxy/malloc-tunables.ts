/**
 * `proxy serve --malloc-tunables`: the C allocator settings every process that serves calls
 * starts with, as glibc's `GLIBC_TUNABLES` (read once, when a process starts, like V8's heap
 * sizes; so they travel with the V8 flags: see v8-flags.ts).
 *
 * Why: Node allocates a Buffer's memory with malloc, and glibc serves an allocation above its
 * mmap threshold (at most 32 MiB) with a mapping of its own that it unmaps again when the Buffer
 * is freed. A claim-checked delivery allocates a buffer of the payload's size and a whole-payload
 * Publish one of the request's, so every large message touched fresh pages: the kernel zeroes each
 * one on its first write, and on a virtual machine that hands freed memory back to its host each
 * such page fault is far dearer. Measured on this project's 2-vCPU VM (bench/RESULTS.md, session
 * 12): allocating and filling 100 MiB took 72–131 ms (once 719 ms, most of it system time) with
 * glibc's defaults and 10–17 ms with this default, and the proxy's CPU per 100 MiB claim-checked
 * delivery fell from 490–650 to 360–520 ms.
 *
 * The default: `mmap_max=0` serves every allocation from the heap, whose freed memory malloc
 * reuses; `trim_threshold` (256 MiB) hands the heap's free top back to the kernel only beyond that,
 * so a serving process keeps at most about that much freed memory in its RSS for the next large
 * message. Other C libraries (musl, macOS) ignore the variable.
 */
import { UsageError } from '../errors.js';

export const DEFAULT_MALLOC_TUNABLES = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=268435456';

const TUNABLE = /^glibc\.malloc\.[a-z_]+=[0-9]+$/;

/** The tunables of `--malloc-tunables`: `glibc.malloc.<name>=<number>` joined by ':'; '' for none. */
export function parseMallocTunables(text: string): string[] {
  const tunables = text.split(':').filter(Boolean);
  const bad = tunables.find((tunable) => !TUNABLE.test(tunable));
  if (bad !== undefined)
    throw new UsageError(
      `--malloc-tunables: '${bad}' is not a glibc malloc tunable (glibc.malloc.<name>=<number>)`,
      `for example --malloc-tunables '${DEFAULT_MALLOC_TUNABLES}', or --malloc-tunables '' for glibc's defaults`,
    );
  return tunables;
}

/**
 * The environment a serving process needs for `tunables`: GLIBC_TUNABLES with them after what it
 * already holds (glibc takes the last value of a tunable, so these win); empty for none.
 */
export function mallocEnvironment(
  tunables: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  if (tunables.length === 0) return {};
  const current = (env.GLIBC_TUNABLES ?? '').split(':').filter(Boolean);
  const names = new Set(tunables.map((tunable) => tunable.split('=')[0]));
  const kept = current.filter((tunable) => !names.has(tunable.split('=')[0]));
  return { GLIBC_TUNABLES: [...kept, ...tunables].join(':') };
}
