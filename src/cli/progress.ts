/**
 * Progress of named steps that run in parallel (the Docker stack's components): listr2 on a TTY,
 * one plain line per update otherwise (logs, CI). A step is done when its message says it is
 * healthy or already running.
 */
import type { StackEvents } from '../localstack/docker-stack.js';

export interface Progress {
  events: StackEvents;
  /** Ends the display; pending steps are marked failed when `failed` is set. */
  finish(failed?: boolean): Promise<void>;
}

const DONE = /^(healthy|already running)/;

export async function createProgress(
  names: readonly string[],
  options: { tty: boolean; write: (line: string) => void },
): Promise<Progress> {
  if (!options.tty) {
    return {
      events: { status: (name, message) => options.write(`[${name}] ${message}`) },
      finish: async () => undefined,
    };
  }
  const { Listr } = await import('listr2');
  const steps = new Map(
    names.map((name) => {
      let settle!: (ok: boolean) => void;
      const done = new Promise<boolean>((resolve) => (settle = resolve));
      return [name, { done, settle, title: (_: string): void => undefined }];
    }),
  );
  const list = new Listr(
    names.map((name) => ({
      title: name,
      task: async (_ctx: unknown, task: { title: string }) => {
        const step = steps.get(name)!;
        step.title = (message: string) => {
          task.title = `${name}: ${message}`;
        };
        if (!(await step.done)) throw new Error(`${name}: did not finish`);
      },
    })),
    { concurrent: true, exitOnError: false, rendererOptions: { collapseErrors: true } },
  );
  const running = list.run().catch(() => undefined);
  return {
    events: {
      status(name, message) {
        const step = steps.get(name);
        if (!step) return;
        step.title(message);
        if (DONE.test(message)) step.settle(true);
      },
    },
    async finish(failed = false) {
      for (const step of steps.values()) step.settle(!failed);
      await running;
    },
  };
}
