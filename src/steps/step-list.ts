/**
 * Boot and restore are ordered lists of named steps (after firecracker-go-sdk's
 * handler lists). Variants edit the list instead of adding flags inside
 * steps. The runner times every step; the timings are the phases users see.
 * A failure comes back as one typed StepFailedError (which step, the phases
 * so far, the step's own error as `cause`); the caught error is never
 * decorated.
 */
export interface Step<C> {
  readonly name: string;
  run(ctx: C): Promise<void>;
}

export interface PhaseTiming {
  name: string;
  ms: number;
}

/**
 * A step of a list threw. `cause` is the step's own error, untouched (its
 * code and status are what users must see: owners of a list unwrap it before
 * passing the failure on, e.g. Vm.boot rethrows `cause`). `phases` are the
 * completed steps plus the failed one, last.
 */
export class StepFailedError extends Error {
  readonly step: string;
  readonly phases: PhaseTiming[];
  declare readonly cause: unknown;

  constructor(step: string, phases: PhaseTiming[], cause: unknown) {
    super(`step ${step} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'StepFailedError';
    this.step = step;
    this.phases = phases;
  }
}

export class StepList<C> {
  private readonly steps: Step<C>[];

  constructor(steps: readonly Step<C>[]) {
    this.steps = [...steps];
  }

  names(): string[] {
    return this.steps.map((s) => s.name);
  }

  /** Inserts `step` after the step named `after`. Throws if `after` is absent. */
  insertAfter(after: string, step: Step<C>): this {
    this.steps.splice(this.indexOf(after) + 1, 0, step);
    return this;
  }

  /** Replaces the step named `name`. Throws if absent. */
  replace(name: string, step: Step<C>): this {
    this.steps.splice(this.indexOf(name), 1, step);
    return this;
  }

  /** Removes the step named `name`. Throws if absent. */
  remove(name: string): this {
    this.steps.splice(this.indexOf(name), 1);
    return this;
  }

  /**
   * Runs the steps in order, timing each; stops at the first failure and
   * throws StepFailedError (the step, the phases so far, the step's error as
   * `cause`) so callers can record how far it got. May be called again: each
   * run starts from the first step.
   */
  async run(ctx: C, onPhase?: (phase: PhaseTiming) => void): Promise<PhaseTiming[]> {
    const phases: PhaseTiming[] = [];
    for (const step of this.steps) {
      const started = performance.now();
      try {
        await step.run(ctx);
      } catch (err) {
        const phase = { name: step.name, ms: round(performance.now() - started) };
        phases.push(phase);
        onPhase?.(phase);
        throw new StepFailedError(step.name, phases, err);
      }
      const phase = { name: step.name, ms: round(performance.now() - started) };
      phases.push(phase);
      onPhase?.(phase);
    }
    return phases;
  }

  private indexOf(name: string): number {
    const i = this.steps.findIndex((s) => s.name === name);
    if (i < 0) throw new Error(`no step named "${name}" (steps: ${this.names().join(', ')})`);
    return i;
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
