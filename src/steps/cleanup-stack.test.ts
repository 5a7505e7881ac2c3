import { describe, expect, it } from 'vitest';
import { CleanupStack } from './cleanup-stack.js';

describe('CleanupStack', () => {
  it('runs undos once, in reverse, past failures', async () => {
    const order: string[] = [];
    const stack = new CleanupStack();
    stack.push('a', () => order.push('a'));
    stack.push('b', () => {
      throw new Error('b broke');
    });
    stack.push('c', async () => order.push('c'));
    const failures = await stack.run();
    expect(order).toEqual(['c', 'a']);
    expect(failures.map((f) => f.name)).toEqual(['b']);
    expect(await stack.run()).toEqual([]);
    expect(order).toEqual(['c', 'a']);
  });
  it('a second run() waits for the first to finish', async () => {
    const stack = new CleanupStack();
    let finished = false;
    stack.push('slow', () => new Promise<void>((r) => setTimeout(() => ((finished = true), r()), 50)));
    const first = stack.run();
    await stack.run();
    expect(finished).toBe(true);
    await first;
  });

  it('runs an undo pushed after run() right away', async () => {
    const stack = new CleanupStack();
    await stack.run();
    let done = false;
    stack.push('late', () => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(true);
  });
});
