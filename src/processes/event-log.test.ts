import { describe, expect, it } from 'vitest';
import { ProcessEventLog } from './event-log.js';

const chunk = (s: string) => Buffer.from(s);

describe('ProcessEventLog', () => {
  it('numbers events 1, 2, ... and answers those after an id exactly once', () => {
    const log = new ProcessEventLog();
    log.appendOutput('stdout', chunk('a'));
    log.appendOutput('stderr', chunk('b'));
    log.appendExit({ exitCode: 3, signal: null, durationMs: 5 });
    expect(log.after(0).map((e) => e.id)).toEqual([1, 2, 3]);
    expect(log.after(1).map((e) => [e.id, e.type])).toEqual([
      [2, 'stderr'],
      [3, 'exit'],
    ]);
    expect(log.after(3)).toEqual([]);
    expect(log.after(99)).toEqual([]);
  });

  it('ignores empty chunks and output after the exit', () => {
    const log = new ProcessEventLog();
    expect(log.appendOutput('stdout', Buffer.alloc(0))).toBeNull();
    log.appendExit({ exitCode: 0, signal: null, durationMs: 1 });
    expect(log.appendOutput('stdout', chunk('late'))).toBeNull();
    expect(log.appendExit({ exitCode: 1, signal: null, durationMs: 1 })).toBeNull();
    expect(log.after(0)).toHaveLength(1);
  });

  it('drops the oldest events beyond the byte bound and tells a reader from the start exactly what it lost', () => {
    const log = new ProcessEventLog({ maxBytes: 10, maxEvents: 100 });
    for (let i = 0; i < 6; i++) log.appendOutput('stdout', chunk('abcd')); // 24 bytes; 2 events (8 bytes) fit
    expect(log.firstKeptId).toBe(5);
    const events = log.after(0);
    expect(events[0]).toEqual({ id: 4, type: 'gap', fromId: 1, toId: 4, lostEvents: 4, lostBytes: 16, exact: true });
    expect(events.slice(1).map((e) => e.id)).toEqual([5, 6]);
    // Resuming from a dropped id counts only what came after it.
    expect(log.after(2)[0]).toMatchObject({ type: 'gap', fromId: 3, toId: 4, lostEvents: 2, lostBytes: 8, exact: true });
    // Resuming from the gap's own id continues after it, without another gap.
    expect(log.after(4).map((e) => e.id)).toEqual([5, 6]);
  });

  it('drops beyond the event bound too, but never the exit', () => {
    const log = new ProcessEventLog({ maxBytes: 1 << 20, maxEvents: 3 });
    for (let i = 0; i < 10; i++) log.appendOutput('stdout', chunk('x'));
    log.appendExit({ exitCode: 0, signal: null, durationMs: 1 });
    const events = log.after(0);
    expect(events.map((e) => e.type)).toEqual(['gap', 'stdout', 'stdout', 'exit']);
    expect(events[0]).toMatchObject({ lostEvents: 8, lostBytes: 8 });
    expect(events.at(-1)).toMatchObject({ id: 11, type: 'exit' });
  });

  it('keeps memory bounded over a long-running process', () => {
    const log = new ProcessEventLog({ maxBytes: 1000, maxEvents: 50 });
    for (let i = 0; i < 100_000; i++) log.appendOutput(i % 2 ? 'stdout' : 'stderr', chunk('0123456789'));
    const kept = log.after(log.nextEventId - 51);
    expect(kept.length).toBeLessThanOrEqual(51);
    expect(log.outputBytes).toBe(1_000_000);
    // A reader far behind the remembered offsets gets a gap whose byte count is a lower bound.
    const gap = log.after(1)[0];
    expect(gap).toMatchObject({ type: 'gap', fromId: 2, exact: false });
    expect(gap.type === 'gap' && gap.lostBytes).toBeGreaterThan(0);
  });
});
