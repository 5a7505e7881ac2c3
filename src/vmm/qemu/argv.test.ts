import { describe, expect, it } from 'vitest';
import { DEFAULT_QEMU_TUNING, accelArg, buildQemuArgv, driveArgs, qemuDrivePath } from './argv.js';
import type { VmLaunchSpec } from '../driver.js';
import { globalDefaults } from '../../config/defaults.js';

const spec: VmLaunchSpec = {
  vmId: 'vm-1',
  runDir: '/data/run/vms/vm-1',
  consoleLogPath: '/data/logs/vm-1.console.log',
  kernelPath: '/img/vmlinux',
  initrdPath: '/img/initrd.cpio',
  kernelArgs: 'console=ttyS0',
  vcpus: 1,
  memoryMib: 256,
};

describe('QEMU disks', () => {
  it('attaches the read-only root then the scratch disk as virtio-mmio block devices (vda, vdb), cached by the host', () => {
    const drives = [
      { id: 'rootfs' as const, path: '/img/rootfs.ext4', readOnly: true },
      { id: 'scratch' as const, path: '/data/run/vms/vm-1/scratch.ext4', readOnly: false },
    ];
    expect(driveArgs({ ...spec, drives })).toEqual([
      '-drive',
      'file=/img/rootfs.ext4,if=none,id=rootfs,format=raw,readonly=on,cache=writeback',
      '-device',
      'virtio-blk-device,drive=rootfs,serial=rootfs',
      '-drive',
      // Relative to QEMU's working directory, the run dir: reopened by name once QEMU is unprivileged.
      'file=./scratch.ext4,if=none,id=scratch,format=raw,readonly=off,cache=writeback',
      '-device',
      'virtio-blk-device,drive=scratch,serial=scratch',
    ]);
    const argv = buildQemuArgv({ ...spec, drives }, 'tcg', { qmp: 'q.sock', agent: 'a.sock' });
    // After the agent channel's devices, in the spec's order.
    expect(argv.indexOf('file=/img/rootfs.ext4,if=none,id=rootfs,format=raw,readonly=on,cache=writeback')).toBeGreaterThan(
      argv.indexOf('virtserialport,chardev=agent,name=org.tfc.agent'),
    );
    expect(driveArgs(spec)).toEqual([]);
  });

  it('escapes commas in paths and keeps paths outside the run dir absolute', () => {
    expect(driveArgs({ ...spec, drives: [{ id: 'rootfs', path: '/img/a,b.ext4', readOnly: true }] })[1]).toBe(
      'file=/img/a,,b.ext4,if=none,id=rootfs,format=raw,readonly=on,cache=writeback',
    );
    expect(qemuDrivePath('/data/run/vms/vm-1', '/data/run/vms/vm-1/sub/x')).toBe('/data/run/vms/vm-1/sub/x');
    expect(qemuDrivePath('/data/run/vms/vm-1', '/data/run/vms/vm-1/x')).toBe('./x');
  });
});

describe('QEMU memory for snapshots', () => {
  const sockets = { qmp: 'q.sock', agent: 'a.sock' };
  const objectOf = (argv: string[]) => (argv.includes('-object') ? argv[argv.indexOf('-object') + 1] : null);

  it('keeps a template RAM file shared and maps it private for a golden clone', () => {
    const template = buildQemuArgv({ ...spec, snapshotMemoryPath: '/dev/shm/t.mem' }, 'tcg', sockets);
    expect(objectOf(template)).toBe('memory-backend-file,id=mem,size=256M,mem-path=/dev/shm/t.mem,share=on');
    const clone = buildQemuArgv({ ...spec, restoreFrom: { memoryPath: '/dev/shm/t.mem', statePath: '/s/state' } }, 'tcg', sockets);
    expect(objectOf(clone)).toBe('memory-backend-file,id=mem,size=256M,mem-path=/dev/shm/t.mem,share=off');
    expect(clone).toContain('-incoming');
  });

  it('gives a VM restored from a live snapshot anonymous RAM named like its source, or the default RAM', () => {
    const fromClone = buildQemuArgv(
      { ...spec, restoreFrom: { memoryPath: '/s/state', statePath: '/s/state', memoryInState: { memoryBackend: true } } },
      'tcg',
      sockets,
    );
    expect(objectOf(fromClone)).toBe('memory-backend-ram,id=mem,size=256M');
    expect(fromClone[fromClone.indexOf('-M') + 1]).toContain(',memory-backend=mem');
    expect(fromClone.join(' ')).not.toContain('mem-path');
    const fromColdBoot = buildQemuArgv(
      { ...spec, restoreFrom: { memoryPath: '/s/state', statePath: '/s/state', memoryInState: { memoryBackend: false } } },
      'tcg',
      sockets,
    );
    expect(objectOf(fromColdBoot)).toBeNull();
    expect(fromColdBoot[fromColdBoot.indexOf('-M') + 1]).not.toContain('memory-backend');
    expect(fromColdBoot).toContain('-incoming');
  });

  it('restores a live snapshot of a golden clone into a shared RAM file (a fork base): the stream fills the file, clones map it later', () => {
    const base = buildQemuArgv(
      {
        ...spec,
        snapshotMemoryPath: '/s/fork-memory',
        restoreFrom: { memoryPath: '/s/state', statePath: '/s/state', memoryInState: { memoryBackend: true } },
      },
      'tcg',
      sockets,
    );
    expect(objectOf(base)).toBe('memory-backend-file,id=mem,size=256M,mem-path=/s/fork-memory,share=on');
    expect(base[base.indexOf('-M') + 1]).toContain(',memory-backend=mem');
    expect(base).toContain('-incoming');
    expect(base).toContain('-S');
    // A cold-booted VM's RAM is not the backend `mem`: its stream cannot fill one.
    expect(() =>
      buildQemuArgv(
        {
          ...spec,
          snapshotMemoryPath: '/s/fork-memory',
          restoreFrom: { memoryPath: '/s/state', statePath: '/s/state', memoryInState: { memoryBackend: false } },
        },
        'tcg',
        sockets,
      ),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('QEMU tuning for density (docs/density.md)', () => {
  const sockets = { qmp: 'q.sock', agent: 'a.sock' };
  const after = (argv: string[], flag: string) => argv[argv.indexOf(flag) + 1];

  it('caps the TCG translation buffer and keeps guest RAM away from KSM by default', () => {
    const argv = buildQemuArgv(spec, 'tcg', sockets);
    expect(after(argv, '-accel')).toBe('tcg,tb-size=128');
    expect(after(argv, '-M')).toBe('microvm,x-option-roms=off,rtc=on,isa-serial=on,mem-merge=off');
    // A clone's machine keeps the memory backend after the new option.
    const clone = buildQemuArgv({ ...spec, restoreFrom: { memoryPath: '/m', statePath: '/s' } }, 'tcg', sockets);
    expect(after(clone, '-M')).toBe('microvm,x-option-roms=off,rtc=on,isa-serial=on,mem-merge=off,memory-backend=mem');
  });

  it("passes the configured tb-size, QEMU's own default for 0, and nothing to KVM", () => {
    expect(after(buildQemuArgv(spec, 'tcg', sockets, null, { tcgTbSizeMib: 64, memMerge: false }), '-accel')).toBe('tcg,tb-size=64');
    expect(after(buildQemuArgv(spec, 'tcg', sockets, null, { tcgTbSizeMib: 0, memMerge: false }), '-accel')).toBe('tcg');
    const kvm = buildQemuArgv(spec, 'kvm', sockets, null, { tcgTbSizeMib: 64, memMerge: false });
    expect(after(kvm, '-accel')).toBe('kvm');
    expect(after(kvm, '-cpu')).toBe('host');
  });

  it('turns mem-merge on when asked (KSM opt-in)', () => {
    expect(after(buildQemuArgv(spec, 'tcg', sockets, null, { tcgTbSizeMib: 128, memMerge: true }), '-M')).toContain(',mem-merge=on');
    expect(after(buildQemuArgv(spec, 'kvm', sockets, null, { tcgTbSizeMib: 128, memMerge: true }), '-M')).toContain(',mem-merge=on');
  });

  it('refuses a tb-size QEMU could not take, naming the config key', () => {
    for (const bad of [-1, 1.5, Number.NaN]) {
      expect(() => accelArg('tcg', { tcgTbSizeMib: bad })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('vmm.qemu.tcg_tb_size_mib') }),
      );
    }
  });

  it('has the same defaults as [vmm.qemu] in the config', () => {
    const defaults = new Map(globalDefaults({}, 0));
    expect(defaults.get('vmm.qemu.tcg_tb_size_mib')).toBe(DEFAULT_QEMU_TUNING.tcgTbSizeMib);
    expect(defaults.get('vmm.qemu.mem_merge')).toBe(DEFAULT_QEMU_TUNING.memMerge);
  });
});
