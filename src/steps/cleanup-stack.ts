/**
 * A cleanup stack: every step that creates a resource (process, socket,
 * directory, TAP, lease) registers its undo at creation. `run()` executes
 * the undos once, in reverse order, continuing past failures, so a failed
 * boot, a stop and a daemon shutdown all release exactly what was made.
 */
export interface CleanupFailure {
  name: string;
  error: unknown;
}

export class CleanupStack {
  private readonly undos: Array<{ name: string; undo: () => unknown }> = [];
  private ran = false;
  private running?: Promise<CleanupFailure[]>;

  /** Registers an undo. After `run()` has started, the undo runs immediately instead (nothing may leak). */
  push(name: string, undo: () => unknown): void {
    if (this.ran) {
      void Promise.resolve()
        .then(undo)
        .catch(() => undefined);
      return;
    }
    this.undos.push({ name, undo });
  }

  /** Names of the undos not yet run, oldest first. */
  pending(): string[] {
    return this.undos.map((u) => u.name);
  }

  /**
   * Runs every undo in reverse order; never throws. Returns the failures
   * (also for callers to log). A second call runs nothing and resolves when
   * the first run has finished, with [].
   */
  async run(): Promise<CleanupFailure[]> {
    if (this.running) {
      await this.running;
      return [];
    }
    this.running = this.runAll();
    return this.running;
  }

  private async runAll(): Promise<CleanupFailure[]> {
    this.ran = true;
    const failures: CleanupFailure[] = [];
    while (this.undos.length > 0) {
      const { name, undo } = this.undos.pop()!;
      try {
        await undo();
      } catch (error) {
        failures.push({ name, error });
      }
    }
    return failures;
  }
}
