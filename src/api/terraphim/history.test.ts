import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_HISTORY_BOUNDS, ExecutionHistory } from './history.js';
import { TERRAPHIM_LIMITS, type CommandHistoryEntry } from './models.js';

const entry = (vm: string, n: number, over: Partial<CommandHistoryEntry> = {}): CommandHistoryEntry => ({
  id: `e${n}`,
  vm_id: vm,
  agent_id: 'a',
  command: `echo ${n}`,
  language: 'bash',
  snapshot_id: null,
  success: n % 2 === 0,
  exit_code: n % 2,
  stdout: '',
  stderr: '',
  executed_at: new Date(0).toISOString(),
  duration_ms: 1,
  ...over,
});

describe('ExecutionHistory', () => {
  const opened: Array<{ close(): void }> = [];
  const open = (maxEntriesPerVm: number, maxVms: number, maxOutputBytes: number) => {
    const h = ExecutionHistory.inMemory({ ...DEFAULT_HISTORY_BOUNDS, maxEntriesPerVm, maxVms, maxOutputBytes });
    opened.push(h);
    return h.history;
  };
  afterEach(() => {
    for (const h of opened.splice(0)) h.close();
  });

  it('maps every CommandHistoryEntry field through the store, and says what it keeps', () => {
    const h = open(3, 10, 100);
    const e = entry('vm-a', 1, { snapshot_id: 'snap-1', stdout: 'o', stderr: 'e', agent_id: 'x' });
    h.add(e);
    expect(h.query('vm-a').entries).toEqual([e]);
    expect(h.maxEntries).toBe(3);
    expect(h.persistent).toBe(false);
    expect(h.vmIds()).toEqual(['vm-a']);
    h.drop('vm-a');
    expect(h.vmIds()).toEqual([]);
    expect(DEFAULT_HISTORY_BOUNDS).toMatchObject({ maxEntriesPerVm: TERRAPHIM_LIMITS.maxHistoryEntries, maxVms: TERRAPHIM_LIMITS.maxHistoryVms });
  });

  it('keeps the newest entries per VM, filters failures, and limits to the most recent', () => {
    const h = open(3, 10, 100);
    for (let n = 0; n < 5; n++) h.add(entry('vm-a', n));
    expect(h.query('vm-a').entries.map((e) => e.id)).toEqual(['e2', 'e3', 'e4']);
    expect(h.query('vm-a', { failuresOnly: true })).toMatchObject({ total: 1, entries: [{ id: 'e3' }] });
    expect(h.query('vm-a', { limit: 1 })).toMatchObject({ total: 3, entries: [{ id: 'e4' }] });
    expect(h.query('vm-a', { limit: 0 }).entries).toEqual([]);
    expect(h.query('vm-other')).toEqual({ entries: [], total: 0 });
  });

  it('bounds the VMs (least recently written dropped) and the output kept', () => {
    const h = open(10, 2, 4);
    h.add(entry('vm-1', 0, { stdout: 'ééé' }));
    h.add(entry('vm-2', 0));
    h.add(entry('vm-1', 2));
    h.add(entry('vm-3', 0));
    expect(h.query('vm-2').total).toBe(0);
    expect(h.query('vm-1').total).toBe(2);
    expect(h.query('vm-1').entries[0]!.stdout).toBe('éé');
  });
});
