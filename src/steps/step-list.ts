/**
 * Boot and restore are ordered lists of named steps (after firecracker-go-sdk's
 * handler lists). Variants edit the list instead of adding flags inside
 * steps. The runner times every step; the timings are the phases users see.
 */
export interface Step<C> {
  readonly name: string;
  run(ctx: C): Promise<void>;
}

export interface PhaseTiming {
  name: string;
  ms: number;
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
   * Runs the steps in order, timing each. On failure, throws the step's
   * error with `phases` (completed ones plus the failed one, marked) attached
   * as `err.phases`, so callers can record how far it got.
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
        if (err && typeof err === 'object') Object.assign(err, { phases, failedStep: step.name });
        throw err;
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
