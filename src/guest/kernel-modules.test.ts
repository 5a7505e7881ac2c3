import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MODULE_GROUP_WANTS, readModuleDepends, resolveModuleGroups, resolveModules } from './kernel-modules.js';

function fakeKo(depends: string): Buffer {
  return Buffer.concat([Buffer.from('\x7fELF....'), Buffer.from(`\0license=GPL\0depends=${depends}\0intree=Y\0`)]);
}

describe('kernel module resolution', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads depends from .modinfo', () => {
    expect(readModuleDepends(fakeKo('virtio,virtio_ring'))).toEqual(['virtio', 'virtio_ring']);
    expect(readModuleDepends(fakeKo(''))).toEqual([]);
  });

  it('orders modules after their dependencies and skips built-ins', () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-mod-'));
    mkdirSync(join(dir, 'kernel/a'), { recursive: true });
    writeFileSync(join(dir, 'kernel/a/virtio_ring.ko'), fakeKo(''));
    writeFileSync(join(dir, 'kernel/a/virtio.ko'), fakeKo('virtio_ring'));
    writeFileSync(join(dir, 'kernel/a/virtio_net.ko'), fakeKo('net_failover,virtio,virtio_ring'));
    writeFileSync(join(dir, 'kernel/a/net_failover.ko'), fakeKo('failover'));
    writeFileSync(join(dir, 'modules.builtin'), 'kernel/net/core/failover.ko\n');
    const names = resolveModules(dir, ['virtio_net']).map((m) => m.name);
    expect(names).toEqual(['net_failover', 'virtio_ring', 'virtio', 'virtio_net']);
  });

  it('names a missing module and who needed it', () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-mod-'));
    mkdirSync(join(dir, 'kernel'), { recursive: true });
    writeFileSync(join(dir, 'kernel/virtio.ko'), fakeKo('virtio_ring'));
    expect(() => resolveModules(dir, ['virtio'])).toThrow(/virtio_ring \(needed by virtio\) is not in/);
  });
});

describe('module groups of the guest init', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves each group with its dependencies; disk has virtio-blk and overlayfs', () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-mod-'));
    mkdirSync(join(dir, 'kernel/a'), { recursive: true });
    const deps: Record<string, string> = {
      virtio_ring: '',
      virtio: 'virtio_ring',
      virtio_mmio: 'virtio,virtio_ring',
      virtio_console: 'virtio,virtio_ring',
      virtio_blk: 'virtio,virtio_ring',
      overlay: '',
      virtio_net: 'virtio,virtio_ring',
      vsock: '',
      vmw_vsock_virtio_transport: 'vsock,virtio',
    };
    for (const [name, d] of Object.entries(deps)) writeFileSync(join(dir, `kernel/a/${name}.ko`), fakeKo(d));
    const groups = resolveModuleGroups(dir);
    const names = (g: keyof typeof groups) => groups[g].map((m) => m.name);
    expect(names('disk')).toEqual(['virtio_ring', 'virtio', 'virtio_mmio', 'virtio_blk', 'overlay']);
    expect(names('serial')).toEqual(['virtio_ring', 'virtio', 'virtio_mmio', 'virtio_console']);
    expect(names('all')).toEqual(expect.arrayContaining(['overlay', 'virtio_blk', 'virtio_net', 'vmw_vsock_virtio_transport']));
    expect(Object.keys(groups).sort()).toEqual(Object.keys(MODULE_GROUP_WANTS).sort());
  });
});
