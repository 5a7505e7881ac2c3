import { describe, expect, it } from 'vitest';
import { commandLineDifferences, normalizeCommandLine, rawBootUnsupported, withoutPrelaunchStop } from './raw-qemu.js';

// The raw-QEMU side of the orchestrator-overhead figure: tfc's own command
// line, only without the prelaunch stop.

describe('withoutPrelaunchStop', () => {
  it('drops -S and keeps every other argument in order', () => {
    const argv = ['-M', 'microvm', '-no-reboot', '-S', '-name', 'tfc-x', '-append', 'console=ttyS0 quiet'];
    expect(withoutPrelaunchStop(argv)).toEqual(['-M', 'microvm', '-no-reboot', '-name', 'tfc-x', '-append', 'console=ttyS0 quiet']);
    expect(argv).toContain('-S');
  });
});

describe('rawBootUnsupported', () => {
  it('accepts a plain QEMU profile', () => {
    expect(rawBootUnsupported({ driver: 'qemu', diskMib: 0 })).toBeNull();
  });

  it('says why for Firecracker, networked and scratch-disk profiles', () => {
    expect(rawBootUnsupported({ driver: 'firecracker', diskMib: 0 })).toMatch(/firecracker driver/);
    expect(rawBootUnsupported({ driver: 'qemu', network: { enabled: true, egressAllow: [], egressDeny: [], bandwidthMbit: 0 }, diskMib: 0 })).toMatch(
      /networked/,
    );
    expect(rawBootUnsupported({ driver: 'qemu', diskMib: 64 })).toMatch(/scratch disk/);
  });
});

describe('normalizeCommandLine and commandLineDifferences', () => {
  const tfc = normalizeCommandLine(
    ['/usr/bin/qemu', '-S', '-name', 'tfc-vm-ab12', '-qmp', 'unix:/var/lib/tfc/run/vms/vm-ab12/qmp.sock,server=on', '-runas', '2000000007:2000000007'],
    { runDir: '/var/lib/tfc/run/vms/vm-ab12', vmId: 'vm-ab12' },
  );
  const raw = normalizeCommandLine(
    ['/usr/bin/qemu', '-name', 'tfc-bench-raw-9f', '-qmp', 'unix:/tmp/tfc-raw-x1/qmp.sock,server=on', '-runas', '2000000011:2000000011'],
    {
      runDir: '/tmp/tfc-raw-x1',
      vmId: 'bench-raw-9f',
    },
  );

  it('replaces the run dir, the VM id and the uid by placeholders', () => {
    expect(tfc).toEqual(['/usr/bin/qemu', '-S', '-name', 'tfc-<id>', '-qmp', 'unix:<run>/qmp.sock,server=on', '-runas', '<uid>']);
  });

  it('two VMs agree once normalized, apart from the dropped -S', () => {
    expect(commandLineDifferences(tfc, raw)).toEqual([]);
  });

  it('names what only one side has, or says when only the order differs', () => {
    expect(commandLineDifferences([...tfc, '-accel', 'tcg,tb-size=128'], [...raw, '-accel', 'tcg'])).toEqual(['-tcg,tb-size=128', '+tcg']);
    expect(commandLineDifferences(['a', 'b'], ['b', 'a'])).toEqual(['same arguments in another order']);
  });
});
