import { describe, expect, it } from 'vitest';
import { StepFailedError, StepList } from './step-list.js';

describe('StepList', () => {
  const step = (name: string, log: string[], fail = false) => ({
    name,
    async run() {
      log.push(name);
      if (fail) throw new Error(`${name} broke`);
    },
  });

  it('runs in order, edits by name, and times each step', async () => {
    const log: string[] = [];
    const list = new StepList([step('a', log), step('b', log), step('c', log)]);
    list.insertAfter('a', step('a2', log)).remove('b').replace('c', step('c2', log));
    const phases = await list.run({});
    expect(log).toEqual(['a', 'a2', 'c2']);
    expect(phases.map((p) => p.name)).toEqual(['a', 'a2', 'c2']);
    expect(phases.every((p) => p.ms >= 0)).toBe(true);
  });

  it('stops at a failing step with a StepFailedError naming it, the phases so far and the untouched cause', async () => {
    const log: string[] = [];
    const list = new StepList([step('a', log), step('b', log, true), step('c', log)]);
    const err = await list.run({}).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StepFailedError);
    const failed = err as StepFailedError;
    expect(failed).toMatchObject({ step: 'b', message: 'step b failed: b broke', phases: [{ name: 'a' }, { name: 'b' }] });
    expect(failed.cause).toBeInstanceOf(Error);
    expect(failed.cause).toMatchObject({ message: 'b broke' });
    expect(Object.keys(failed.cause as object)).toEqual([]);
    expect(log).toEqual(['a', 'b']);
  });

  it('wraps non-Error throws too', async () => {
    const list = new StepList([{ name: 'x', run: () => Promise.reject('plain') }]);
    await expect(list.run({})).rejects.toMatchObject({ step: 'x', cause: 'plain', message: 'step x failed: plain' });
  });

  it('names the steps when an edit refers to a missing one', () => {
    expect(() => new StepList([step('a', [])]).remove('x')).toThrow(/no step named "x" \(steps: a\)/);
  });
});
