import { describe, expect, it } from 'vitest';
import { VmStateMachine, type VmState } from './state-machine.js';

describe('VmStateMachine', () => {
  it('follows the lifecycle and reports each transition', () => {
    const seen: string[] = [];
    const sm = new VmStateMachine('vm-1', 'creating', (f, t) => seen.push(`${f}->${t}`));
    for (const s of ['booting', 'running', 'paused', 'running', 'stopping', 'stopped'] as VmState[]) sm.transition(s);
    expect(seen).toEqual(['creating->booting', 'booting->running', 'running->paused', 'paused->running', 'running->stopping', 'stopping->stopped']);
  });
  it('rejects an invalid transition with INVALID_STATE naming the current state', () => {
    const sm = new VmStateMachine('vm-1', 'stopped');
    expect(() => sm.transition('running')).toThrow(expect.objectContaining({ code: 'INVALID_STATE', message: 'VM vm-1 cannot go from stopped to running' }));
  });
  it('guards operations by state', () => {
    const sm = new VmStateMachine('vm-2', 'paused');
    expect(() => sm.require('exec', ['running'])).toThrow(/cannot exec VM vm-2: it is paused \(exec needs running\)/);
    expect(() => sm.require('resume', ['paused'])).not.toThrow();
  });
  it('keeps the new state when the listener (the store) throws', () => {
    const sm = new VmStateMachine('vm-3', 'running', () => {
      throw new Error('disk full');
    });
    expect(() => sm.transition('stopping')).toThrow('disk full');
    expect(sm.state).toBe('stopping');
    expect(sm.canTransition('stopped')).toBe(true);
  });
});
