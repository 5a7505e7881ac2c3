import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { dataLayout, LiveSnapshotRepository, openDatabase, VmRepository, type Db } from '../src/store/index.js';
import { VmService, type Vm } from '../src/vm/index.js';
import { SnapshotManager } from '../src/snapshot/index.js';
import { LiveSnapshotService, snapshotFiles } from '../src/snapshot/live/index.js';
import { createDrivers } from '../src/vmm/index.js';
import { assertNothingLeft, testDataDir } from './helpers.js';
import { openNetworkedService, type NetworkedService } from './net/networked-service.js';
import type { VmProfile } from '../src/vm/index.js';
import { httpGet, Topology } from './net/topology.js';

/** Pss and private bytes of one process (/proc/PID/smaps_rollup, kB lines). */
function memoryOf(pid: number): { pss: number; privateBytes: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { pss: kb('Pss'), privateBytes: kb('Private_Clean') + kb('Private_Dirty') };
}

function sum(vms: Vm[]): { pss: number; privateBytes: number } {
  return vms.map((v) => memoryOf(v.pid!)).reduce((a, b) => ({ pss: a.pss + b.pss, privateBytes: a.privateBytes + b.privateBytes }));
}

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

// Forks of a golden clone's live snapshot share its RAM copy-on-write (a
// fork base made once), instead of each loading the whole stream into RAM
// of its own. Real QEMU (TCG), in-process.
describe('copy-on-write forks of a live snapshot (real QEMU)', () => {
  let db: Db;
  let service: VmService;
  let live: LiveSnapshotService;
  let vm: Vm;
  let config: ReturnType<typeof loadConfig>['config'];
  const dataDir = testDataDir();
  const layout = dataLayout(dataDir);
  const text = async (v: Vm, argv: string[]) => (await v.exec({ argv, timeoutMs: 20_000 })).stdout.toString().trim();
  const liveService = () => new LiveSnapshotService({ layout, repo: new LiveSnapshotRepository(db), service, profiles: (name) => config.profiles[name] });

  beforeAll(async () => {
    config = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir }).config;
    db = openDatabase(layout.database);
    service = new VmService({ layout, repo: new VmRepository(db), drivers: createDrivers(config), stopTimeoutMs: 3000 });
    live = liveService();
    vm = await new SnapshotManager(layout, service).clone(config.profiles.minimal);
  }, 300_000);

  afterAll(async () => {
    await service?.stopAll('test finished');
    db?.close();
    await assertNothingLeft(dataDir);
  });

  it('forks into 3 that see the state and run on independently, share one fork base, and take far less private memory than full copies', async () => {
    expect(vm.hasMemoryBackend).toBe(true);
    // State in memory only: 16 MiB of random bytes in the initramfs root, and a running counter.
    await text(vm, ['sh', '-c', 'head -c 16777216 /dev/urandom > /tmp/blob']);
    const blobSum = await text(vm, ['sh', '-c', 'sha256sum /tmp/blob | cut -d" " -f1']);
    const { pid } = await vm.agent.spawn({ argv: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; sleep 0.1; done'] });
    await delay(1000);
    const atSnapshot = Number(await text(vm, ['cat', '/tmp/c']));
    expect(atSnapshot).toBeGreaterThan(0);
    const snap = await live.snapshot(vm, { name: `cow-fork-${process.pid}` });
    expect(snap.files.forkMemory).toBeUndefined();

    // Two fork requests at once: one fork base between them.
    let started = performance.now();
    const [two, one] = await Promise.all([live.fork(snap.id, 2), live.fork(snap.id, 1)]);
    const firstForkMs = performance.now() - started;
    const forks = [...two, ...one];
    const full: Vm[] = [];
    try {
      const record = live.get(snap.id);
      expect(record.files.forkMemory).toBe(`${snap.dir}/fork-memory`);
      expect(record.files.forkState).toBe(`${snap.dir}/fork-state`);
      expect(readdirSync(snap.dir).sort()).toEqual(['fork-memory', 'fork-state', 'state']);
      for (const f of [record.files.forkMemory!, record.files.forkState!]) {
        const st = statSync(f);
        expect(st.mode & 0o777, f).toBe(0o444);
        expect(st.uid, f).toBe(0);
      }
      const memory = statSync(record.files.forkMemory!);
      expect(memory.size).toBe(snap.meta.memoryMib * 1024 ** 2);
      expect(memory.blocks * 512, 'the RAM file is sparse').toBeLessThan(memory.size);
      expect(record.sizeBytes, 'size_bytes counts the fork base').toBeGreaterThan(snap.sizeBytes + 16 * 1024 ** 2);
      console.log(
        `fork base: first fork request (3 forks in 2 requests) ${Math.round(firstForkMs)} ms; snapshot ${mib(snap.sizeBytes)} -> with fork base ${mib(record.sizeBytes)} (fork-memory ${mib(memory.blocks * 512)} allocated of ${mib(memory.size)})`,
      );

      // Each fork sees the state and runs on independently, with its own random bytes.
      for (const f of forks) expect(await text(f, ['sh', '-c', 'sha256sum /tmp/blob | cut -d" " -f1'])).toBe(blobSum);
      const first = await Promise.all(forks.map(async (f) => Number(await text(f, ['cat', '/tmp/c']))));
      for (const n of first) expect(n).toBeGreaterThanOrEqual(atSnapshot);
      await forks[0]!.exec({ argv: ['sh', '-c', `kill ${pid}`] });
      const stopped = Number(await text(forks[0]!, ['cat', '/tmp/c']));
      await forks[1]!.exec({ argv: ['sh', '-c', 'echo only-in-1 > /tmp/mine'] });
      await delay(1500);
      const later = await Promise.all(forks.map(async (f) => Number(await text(f, ['cat', '/tmp/c']))));
      expect(later[0]).toBe(stopped);
      expect(later[1]).toBeGreaterThan(first[1]!);
      expect(later[2]).toBeGreaterThan(first[2]!);
      expect(await text(forks[2]!, ['sh', '-c', 'cat /tmp/mine 2>/dev/null || echo absent'])).toBe('absent');
      const random = await Promise.all(forks.map((f) => text(f, ['sh', '-c', 'head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n"'])));
      expect(new Set(random).size).toBe(3);

      // The same snapshot restored the old way (the whole stream into each VM's own RAM), side by side.
      started = performance.now();
      for (let i = 0; i < 3; i++) {
        full.push(await service.restore({ profile: config.profiles.minimal, snapshot: snapshotFiles(snap), image: service.image(snap.meta.image) }));
      }
      const fullMs = (performance.now() - started) / 3;
      for (const f of full) expect(await text(f, ['sh', '-c', 'sha256sum /tmp/blob | cut -d" " -f1'])).toBe(blobSum);
      await delay(1000);
      const cow = sum(forks);
      const copies = sum(full);
      console.log(
        `3 forks of a ${snap.meta.memoryMib} MiB golden clone (16 MiB blob in memory): copy-on-write Pss ${mib(cow.pss)}, private ${mib(cow.privateBytes)}; full copies Pss ${mib(copies.pss)}, private ${mib(copies.privateBytes)} (ratio ${(cow.privateBytes / copies.privateBytes).toFixed(2)}); full-copy restore ${Math.round(fullMs)} ms each`,
      );
      expect(cow.privateBytes).toBeLessThan(copies.privateBytes * 0.6);

      // The fork base is in the snapshot's row: another service (a daemon restart) uses it as it is.
      const inode = statSync(record.files.forkMemory!).ino;
      started = performance.now();
      const [again] = await liveService().fork(snap.id, 1);
      console.log(`fork from an existing fork base: ${Math.round(performance.now() - started)} ms`);
      forks.push(again!);
      expect(statSync(record.files.forkMemory!).ino).toBe(inode);
      expect(await text(again!, ['sh', '-c', 'sha256sum /tmp/blob | cut -d" " -f1'])).toBe(blobSum);
    } finally {
      await Promise.all([...forks, ...full].map((f) => service.destroy(f, 'test finished')));
    }
    live.delete(snap.id);
    expect(existsSync(snap.dir)).toBe(false);
  }, 240_000);
});

const isRoot = process.getuid?.() === 0;

// A networked golden clone: the VMM making the fork base needs the same
// virtio-net device (a TAP in a namespace of its own, gone afterwards).
describe.skipIf(!isRoot)('copy-on-write forks of a networked golden clone (real QEMU, TAP, namespaces)', () => {
  const topo = new Topology();
  const dataDir = testDataDir();
  let net: NetworkedService | undefined;

  beforeAll(async () => {
    net = await openNetworkedService(topo, dataDir);
  }, 120_000);

  afterAll(async () => {
    await (net ? net.close() : topo.destroy());
    expect(await topo.namespaces()).toEqual([]);
    await assertNothingLeft(dataDir);
  });

  it('a fork restored from the fork base serves at its own address what the snapshot served', async () => {
    const { config, layout, db, service } = net!;
    const profile: VmProfile = { ...config.profiles.minimal, name: 'cow-net-test', network: { ...config.profiles.minimal.network, enabled: true } };
    const live = new LiveSnapshotService({
      layout,
      repo: new LiveSnapshotRepository(db),
      service,
      profiles: (n) => (n === profile.name ? profile : undefined),
    });
    const vm = await new SnapshotManager(layout, service).clone(profile);
    await vm.writeFile('/www/index.html', 'served before the snapshot\n', { mkdirs: true });
    expect((await vm.exec({ argv: ['httpd', '-p', '9000', '-h', '/www'] })).exitCode).toBe(0);
    const snap = await live.snapshot(vm);
    const [fork] = await live.fork(snap.id, 1);
    try {
      expect(live.get(snap.id).files.forkMemory).toBeDefined();
      expect(fork!.network!.hostAddress).not.toBe(vm.network!.hostAddress);
      expect((await httpGet(topo.hostNs, fork!.network!.hostAddress, 9000)).body).toBe('served before the snapshot');
      // The fork base's own namespace is gone.
      expect(await topo.namespaces('tfc-fb')).toEqual([]);
    } finally {
      await service.destroy(fork!, 'test finished');
      await service.destroy(vm, 'test finished');
    }
  }, 240_000);
});
