import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig, type Config } from '../config/index.js';
import { composeRuntime } from './compose.js';

// The runtime as `tfc vm run` composes it: with `probe`, the driver's probe
// (a run of the VMM binary) starts while the rest loads and is the one the
// first VM uses; without it, composing runs nothing.
describe('composeRuntime', () => {
  let dir: string;
  let config: Config;
  let runs: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-compose-'));
    runs = join(dir, 'runs');
    const fakeQemu = join(dir, 'fake-qemu');
    writeFileSync(fakeQemu, `#!/bin/sh\necho run >> '${runs}'\necho 'QEMU emulator version 9.9.9'\n`);
    chmodSync(fakeQemu, 0o755);
    const defaults = defaultConfig({ env: {}, uid: 1000 });
    config = { ...defaults, dataDir: join(dir, 'data'), vmm: { ...defaults.vmm, qemu: { ...defaults.vmm.qemu, binary: fakeQemu, accel: 'tcg' } } };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('starts the probe of the drivers asked for, once, and the driver reuses it', async () => {
    const runtime = await composeRuntime(config, { networking: false, probe: ['qemu'] });
    try {
      // Started by composeRuntime itself, not by the probe() below.
      const deadline = Date.now() + 10_000;
      while (!existsSync(runs) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(existsSync(runs)).toBe(true);
      const info = await runtime.drivers.qemu!.probe();
      expect(info.version).toBe('9.9.9');
      expect(readFileSync(runs, 'utf8')).toBe('run\n');
    } finally {
      await runtime.close('test');
    }
  });

  it('runs nothing without probe', async () => {
    const runtime = await composeRuntime(config, { networking: false });
    await runtime.close('test');
    expect(existsSync(runs)).toBe(false);
  });

  it('a failed early probe is not reported at compose time; the driver reports it on use', async () => {
    const broken = { ...config, vmm: { ...config.vmm, qemu: { ...config.vmm.qemu, binary: join(dir, 'missing-qemu') } } };
    const runtime = await composeRuntime(broken, { networking: false, probe: ['qemu'] });
    try {
      await expect(runtime.drivers.qemu!.probe()).rejects.toMatchObject({ code: 'VMM_BINARY_NOT_FOUND' });
    } finally {
      await runtime.close('test');
    }
  });
});
