import { setFlagsFromString } from 'node:v8';

/**
 * For a command that runs a burst of work and exits (namespace validate over many files): stop V8
 * from optimizing with TurboFan for the rest of this process, keeping its faster-to-compile tiers
 * (Sparkplug, Maglev). In a run of well under a second, TurboFan's compile jobs cost more CPU than
 * their code saves: bench/RESULTS.md measured `namespace validate` over 1,000 files at 0.51 s of
 * CPU with it and 0.34 s without (0.70 -> 0.49 s wall), and 5,000 files still faster without.
 * Never for servers: they run long enough for TurboFan to pay. Node documents flag changes after
 * start-up as unsupported in general; this one only stops future tier-ups, and V8 reads it there.
 */
export function tuneJitForShortRun(): void {
  setFlagsFromString('--no-turbofan');
}
