import { describe, expect, it } from 'vitest';
import { StepList } from './step-list.js';

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

  it('stops at a failing step and attaches the phases so far', async () => {
    const log: string[] = [];
    const list = new StepList([step('a', log), step('b', log, true), step('c', log)]);
    await expect(list.run({})).rejects.toMatchObject({ message: 'b broke', failedStep: 'b', phases: [{ name: 'a' }, { name: 'b' }] });
    expect(log).toEqual(['a', 'b']);
  });

  it('names the steps when an edit refers to a missing one', () => {
    expect(() => new StepList([step('a', [])]).remove('x')).toThrow(/no step named "x" \(steps: a\)/);
  });
});
