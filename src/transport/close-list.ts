/**
 * What a server opened, closed in reverse order (as Fastify's onClose hooks). Each resource
 * registers its close as soon as it exists, so a start that fails half-way closes exactly what it
 * made, and `close()` is idempotent: a second call waits for the first.
 */
export class CloseList {
  private readonly entries: Array<{ name: string; close: () => unknown }> = [];
  private closing?: Promise<void>;

  /** Registers `close` for a resource that now exists; refused once closing has begun. */
  add(name: string, close: () => unknown): void {
    if (this.closing) throw new Error(`cannot register '${name}': already closed`);
    this.entries.push({ name, close });
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Runs every close, last registered first; one failure does not stop the others. */
  close(): Promise<void> {
    this.closing ??= this.run();
    return this.closing;
  }

  private async run(): Promise<void> {
    const failures: unknown[] = [];
    for (const { name, close } of this.entries.reverse()) {
      try {
        await close();
      } catch (err) {
        failures.push(new Error(`closing ${name} failed: ${(err as Error).message}`, { cause: err }));
      }
    }
    this.entries.length = 0;
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, 'closing failed');
  }
}

/**
 * Runs `start` and, when it throws, closes what it registered before rethrowing. The list stays
 * closed: a server whose start failed is not started again.
 */
export async function startOrUnwind(closes: CloseList, start: () => Promise<void>): Promise<void> {
  try {
    await start();
  } catch (err) {
    await closes.close().catch(() => undefined);
    throw err;
  }
}
