import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isSameProcessAlive, processStartTime } from './identity.js';

describe('process identity', () => {
  it('tells a live process from a dead one and from a reused pid', async () => {
    const child = spawn('sleep', ['5']);
    const start = processStartTime(child.pid!);
    expect(start).toBeGreaterThan(0);
    expect(isSameProcessAlive(child.pid!, start)).toBe(true);
    // Same pid, different start time: a different process.
    expect(isSameProcessAlive(child.pid!, start! - 1)).toBe(false);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(isSameProcessAlive(child.pid!, start)).toBe(false);
    expect(processStartTime(999_999_999)).toBeNull();
  });
});
