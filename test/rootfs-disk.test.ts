import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Profile } from '../src/config/index.js';
import { resolveImage, type BuiltImage } from '../src/guest/image-store.js';
import { runCommand } from '../src/process/index.js';
import { SnapshotManager } from '../src/snapshot/index.js';
import { dataLayout, openDatabase, VmRepository, type DataLayout, type Db } from '../src/store/index.js';
import { VmService, type Vm } from '../src/vm/index.js';
import { createDrivers } from '../src/vmm/index.js';
import { assertNothingLeft, scratchDir, testDataDir } from './helpers.js';

// Images with a root filesystem (docs/disks.md), on real QEMU: the minimal
// image's kernel and initramfs with a tiny ext4 root made here (no shell in
// it: stage 2 of init and these tests use /.tfc/busybox), attached
// read-only under an in-memory overlay; golden snapshots with warmup and a
// scratch disk, and clones that share the template's state but not each
// other's writes.

const BB = '/.tfc/busybox';
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const sh = (vm: Vm, script: string) => vm.exec({ argv: [BB, 'sh', '-c', script], timeoutMs: 30_000 });
const ms = (vm: Vm) => Math.round(vm.bootPhases.reduce((sum, p) => sum + p.ms, 0));

describe('root filesystem disk and scratch disk (real QEMU)', () => {
  const dir = scratchDir('tfc-rootfs-');
  let db: Db;
  let layout: DataLayout;
  let service: VmService;
  let snapshots: SnapshotManager;
  let minimal: Profile;
  let rootfsPath = '';
  let rootfsSha = '';
  const profile = (name: string, extra: Partial<Profile> = {}): Profile => ({ ...minimal, name, image: 'rootfs-test', ...extra });

  beforeAll(async () => {
    const dataDir = testDataDir();
    const { config } = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir });
    minimal = config.profiles.minimal;
    layout = dataLayout(dataDir);
    db = openDatabase(layout.database);

    const tree = join(dir.path, 'tree');
    for (const d of ['proc', 'sys', 'dev', 'tmp', 'run', '.tfc', 'etc', 'srv']) mkdirSync(join(tree, d), { recursive: true });
    writeFileSync(join(tree, 'srv/hello.txt'), 'hello from the root disk\n');
    writeFileSync(join(tree, 'etc/motd'), 'rootfs-test\n');
    rootfsPath = join(dir.path, 'rootfs.ext4');
    await runCommand('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, '-L', 'rootfs', rootfsPath, '16M'], { timeoutMs: 60_000 });
    rootfsSha = sha256(rootfsPath);

    const base = resolveImage(layout, 'minimal');
    const image: BuiltImage & { rootfsPath: string } = {
      ...base,
      rootfsPath,
      manifest: { ...base.manifest, name: 'rootfs-test', digest: createHash('sha256').update(`${base.manifest.digest} ${rootfsSha}`).digest('hex') },
    };
    service = new VmService({
      layout,
      repo: new VmRepository(db),
      drivers: createDrivers(config),
      stopTimeoutMs: 3000,
      images: (name) => (name === 'rootfs-test' ? image : resolveImage(layout, name)),
    });
    snapshots = new SnapshotManager(layout, service);
  }, 120_000);

  afterAll(async () => {
    await service?.stopAll('test finished');
    for (const name of ['rootfs-snap-test']) {
      try {
        snapshots?.remove(name);
      } catch {
        // not made (an earlier failure)
      }
    }
    db?.close();
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  it('boots with the root disk read-only under an in-memory overlay; the disk file never changes', async () => {
    const vm = await service.create({ profile: profile('rootfs-test') });
    const plain = await service.create({ profile: minimal });
    console.log(`[rootfs-disk] cold boot to agent ready: with a root disk ${ms(vm)} ms, minimal image ${ms(plain)} ms`);
    await service.destroy(plain);
    try {
      expect((await vm.readFile('/srv/hello.txt')).data.toString()).toBe('hello from the root disk\n');
      const mounts = (await vm.readFile('/proc/mounts')).data.toString();
      expect(mounts).toMatch(/^overlay \/ overlay [^ ]*\blowerdir=\/lower,upperdir=\/rw\/upper/m);
      // The rootfs has no shell and no /bin: the agent's commands come from /.tfc,
      // whose bin/ has the busybox applets (last in PATH) the image lacks.
      expect((await vm.stat('/.tfc/bin/ip')).type).toBe('symlink');
      expect(existsSync(join(dir.path, 'tree', 'bin'))).toBe(false);
      const w = await sh(vm, 'echo changed > /srv/hello.txt && echo new > /srv/new.txt && mkdir -p /var/lib/x && cat /srv/hello.txt /srv/new.txt');
      expect(w.stderr.toString()).toBe('');
      expect(w.stdout.toString()).toBe('changed\nnew\n');
      await vm.writeFile('/etc/motd', 'via the agent\n');
      expect((await vm.readFile('/etc/motd')).data.toString()).toBe('via the agent\n');
      // The device itself is read-only: the guest cannot write it even raw.
      const raw = await sh(vm, `${BB} dd if=/dev/zero of=/dev/vda bs=512 count=1 2>&1; echo rc=$?`);
      expect(raw.stdout.toString()).toMatch(/rc=1/);
      expect((await vm.exec({ argv: [BB, 'cat', '/sys/block/vda/serial'] })).stdout.toString().trim()).toBe('rootfs');
    } finally {
      await service.destroy(vm);
    }
    expect(sha256(rootfsPath)).toBe(rootfsSha);
  }, 180_000);

  it('a scratch disk without a root disk is /dev/vda, mounted at /scratch; name servers from tfc.dns', async () => {
    const vm = await service.create({ profile: { ...minimal, name: 'scratch-test', diskMib: 16, kernelArgs: 'tfc.dns=192.0.2.53,192.0.2.54' } });
    try {
      expect((await vm.exec({ argv: ['cat', '/sys/block/vda/serial'] })).stdout.toString().trim()).toBe('scratch');
      const w = await vm.exec({ argv: ['sh', '-c', 'echo kept > /scratch/f && df -k /scratch | tail -1 && grep " /scratch " /proc/mounts'] });
      expect(w.stdout.toString()).toMatch(/^\/dev\/vda\s+\d+/);
      expect(w.stdout.toString()).toMatch(/\/dev\/vda \/scratch ext4 rw,noatime/);
      expect((await vm.readFile('/etc/resolv.conf')).data.toString()).toBe('nameserver 192.0.2.53\nnameserver 192.0.2.54\n');
      expect(existsSync(vm.scratchDiskPath!)).toBe(true);
    } finally {
      await service.destroy(vm);
    }
    expect(existsSync(vm.scratchDiskPath!)).toBe(false);
  }, 180_000);

  it('a root disk that cannot be mounted ends the boot with the reason on the console', async () => {
    const broken = join(dir.path, 'broken.ext4');
    writeFileSync(broken, Buffer.alloc(4 * 1024 * 1024));
    const base = resolveImage(layout, 'minimal');
    const brokenService = new VmService({
      layout,
      repo: new VmRepository(db),
      drivers: createDrivers(loadConfig({ env: { TFC_DATA_DIR: testDataDir() }, cwd: testDataDir() }).config),
      stopTimeoutMs: 3000,
      images: () => ({ ...base, rootfsPath: broken }),
    });
    const err = await brokenService.create({ profile: profile('broken-test') }).then(
      () => null,
      (e: unknown) => e as Error & { code: string },
    );
    expect(err?.code).toBe('VMM_EXITED');
    const log = readdirSync(layout.logs)
      .filter((f) => f.endsWith('.console.log'))
      .map((f) => join(layout.logs, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
    expect(readFileSync(log, 'utf8')).toContain('tfc-init: fatal: cannot mount the root disk /dev/vda (ext4, read-only)');
    expect(err?.message).toMatch(/tfc-init: fatal: cannot mount the root disk/);
  }, 180_000);

  it('golden snapshot with warmup and a scratch disk: clones see the template state, not each other', async () => {
    const p = profile('rootfs-snap-test', {
      diskMib: 64,
      warmup: [BB, 'sh', '-c', 'echo warm > /srv/warm.txt && echo from-template > /scratch/template.txt'],
    });
    const snap = await snapshots.ensure(p);
    const names = snap.manifest.create_phases.map((ph) => ph.name);
    expect(names).toEqual(['prepare', 'disk', 'spawn_vmm', 'configure', 'start', 'kernel', 'agent_ready', 'warmup', 'sync', 'pause', 'snapshot']);
    expect(snap.manifest.kernel_args).toMatch(/ tfc\.root=\/dev\/vda tfc\.scratch=\/dev\/vdb( |$)/);
    expect(snap.manifest).toMatchObject({ warmup: p.warmup, disk_mib: 64 });
    const scratchFile = snap.files.scratchDiskPath!;
    expect(statSync(scratchFile).mode & 0o222).toBe(0);
    expect(statSync(scratchFile).size).toBe(64 * 1024 * 1024);
    // Sparse: far less allocated than its size.
    expect(statSync(scratchFile).blocks * 512).toBeLessThan(32 * 1024 * 1024);
    const diskSha = sha256(scratchFile);

    // A changed warmup is a different snapshot.
    const other = await snapshots.current({ ...p, warmup: [BB, 'true'] });
    expect(other).toBeNull();

    const [a, b] = await Promise.all([snapshots.clone(p), snapshots.clone(p)]);
    console.log(
      `[rootfs-disk] clones with a root and a 64 MiB scratch disk restored in ${ms(a)} and ${ms(b)} ms (two at once): ${a.bootPhases.map((ph) => `${ph.name} ${Math.round(ph.ms)}`).join(', ')}`,
    );
    try {
      for (const vm of [a, b]) {
        expect((await vm.readFile('/srv/warm.txt')).data.toString()).toBe('warm\n');
        expect((await vm.readFile('/scratch/template.txt')).data.toString()).toBe('from-template\n');
        const mounts = (await vm.readFile('/proc/mounts')).data.toString();
        expect(mounts).toMatch(/^\/dev\/vdb \/scratch ext4 rw/m);
      }
      const started = performance.now();
      const w = await sh(a, 'echo a > /srv/a.txt && head -c 4000000 /dev/urandom > /scratch/a.bin && sync && ls /scratch');
      expect(w.stdout.toString(), w.stderr.toString()).toMatch(/a\.bin/);
      console.log(`[rootfs-disk] clone writes 4 MB to /scratch and syncs in ${Math.round(performance.now() - started)} ms`);
      const seen = await sh(b, `ls /srv /scratch; ${BB} cat /srv/a.txt 2>&1 || true`);
      expect(seen.stdout.toString()).not.toMatch(/a\.txt\n|a\.bin/);
      expect(seen.stdout.toString()).toMatch(/No such file/);
      // The clones' disks are their own files in their run dirs; the snapshot's stays as it was.
      const runDirs = [a, b].map((vm) => join(layout.runVms, vm.id));
      for (const d of runDirs) expect(readdirSync(d)).toContain('scratch.ext4');
      expect(sha256(scratchFile)).toBe(diskSha);
      await service.destroy(a);
      await service.destroy(b);
      for (const d of runDirs) expect(existsSync(d)).toBe(false);
    } finally {
      await service.destroy(a);
      await service.destroy(b);
    }
  }, 300_000);
});
