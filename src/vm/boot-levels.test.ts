import { describe, expect, it } from 'vitest';
import { bootLevelArgs } from './boot-levels.js';

describe('boot levels', () => {
  it('are cumulative', () => {
    const std = bootLevelArgs('standard');
    const fast = bootLevelArgs('fast');
    const ultra = bootLevelArgs('ultrafast');
    const sub2 = bootLevelArgs('sub2second');
    expect(std).toEqual(['quiet']);
    expect(fast.slice(0, std.length)).toEqual(std);
    expect(ultra.slice(0, fast.length)).toEqual(fast);
    expect(sub2.slice(0, ultra.length)).toEqual(ultra);
    expect(sub2).toContain('tfc.modules=lean');
    expect(ultra).toContain('mitigations=off');
  });
  it('instant templates boot with the ultrafast arguments', () => {
    expect(bootLevelArgs('instant')).toEqual(bootLevelArgs('ultrafast'));
  });
});
