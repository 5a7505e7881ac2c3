import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TfcClient } from '../../src/client/index.js';
import { loadConfig } from '../../src/config/index.js';
import { startDaemon, type Daemon } from '../../src/daemon/index.js';
import { buildAgent } from '../../src/guest/agent-build.js';
import { REPO, assertNothingLeft, scratchDir, testDataDir, until, writeConfig } from '../helpers.js';

/**
 * Snapshots of running VMs with the Firecracker driver, on a host without
 * KVM: an in-process daemon drives the spec-validating fake Firecracker
 * (test/fake-firecracker, whose "guest" is a host build of the agent), plain
 * and through the fake jailer. Proves the API conversation: a Full snapshot
 * with its own memory file while the VM keeps running (Paused -> snapshot
 * -> Resumed), rollback and fork loading that memory file (`mem_backend`
 * File), pause to disk and resume; that Firecracker would have accepted
 * every request; and that nothing is left behind. What a real guest keeps
 * across them is proven on QEMU (test/live-snapshots.test.ts) and, on a KVM
 * host, by the driver contract suite.
 */
const FAKE = join(REPO, 'test', 'fake-firecracker', 'fake-firecracker.mjs');
const FAKE_JAILER = join(REPO, 'test', 'fake-firecracker', 'fake-jailer.mjs');
const hasGcc = spawnSync('gcc', ['--version']).status === 0;
const isRoot = process.getuid?.() === 0;

interface FakeRequest {
  operationId: string | null;
  body?: Record<string, unknown>;
  status: number;
}
interface FakeReport {
  pid: number;
  exit: { reason: string } | null;
  violations: unknown[];
  requests: FakeRequest[];
}

const TOKEN = 'fc-live-snapshots-token-0123456789';

for (const jailed of [false, true]) {
  const skip = !hasGcc ? 'gcc is not installed' : jailed && !isRoot ? 'the fake jailer needs root to run Firecracker as the jail user' : null;
  describe.skipIf(skip !== null)(`snapshots of running Firecracker VMs (fake Firecracker${jailed ? ', jailed' : ''})`, () => {
    const scratch = scratchDir('tfc-fc-live-');
    const reports = join(scratch.path, 'reports');
    const dataDir = testDataDir();
    const saved: Record<string, string | undefined> = {};
    let daemon: Daemon;
    let client: TfcClient;

    const reportFiles = () => readdirSync(reports).filter((f) => f.endsWith('.json') && !f.startsWith('jailer-'));
    const reportOf = (vmId: string): FakeReport => {
      // Jailed, the fake's --id is the VM id made jailer-safe; find the report naming this VM's files.
      const file = reportFiles().find((f) => f.includes(vmId.replace(/^vm-/, '')));
      if (!file) throw new Error(`no fake Firecracker report for ${vmId} in ${reportFiles().join(', ')}`);
      return JSON.parse(readFileSync(join(reports, file), 'utf8')) as FakeReport;
    };
    const allReports = (): FakeReport[] => reportFiles().map((f) => JSON.parse(readFileSync(join(reports, f), 'utf8')) as FakeReport);

    beforeAll(async () => {
      chmodSync(scratch.path, 0o755);
      mkdirSync(reports, { mode: 0o777 });
      chmodSync(reports, 0o777);
      const agent = join(scratch.path, 'tfc-agent');
      await buildAgent(agent);
      chmodSync(agent, 0o755);
      const env = { FAKE_FC_GUEST_AGENT: agent, FAKE_FC_REPORT: join(reports, '{id}.json'), FAKE_JAILER_REPORT: join(reports, 'jailer-{id}.json') };
      for (const [k, v] of Object.entries(env)) {
        saved[k] = process.env[k];
        process.env[k] = v;
      }
      const jail = jailed
        ? `[vmm.firecracker.jailer]\nenabled = true\nbinary = "${FAKE_JAILER}"\nchroot_base_dir = "${join(scratch.path, 'jails')}"\n`
        : '[vmm.firecracker.jailer]\nenabled = false\n';
      const configPath = writeConfig(
        scratch.path,
        `[vmm]\ndefault_driver = "firecracker"\n[vmm.firecracker]\nbinary = "${FAKE}"\n${jail}` +
          '[pools.default]\nmin = 1\nmax = 2\ntarget = 1\nallocate_timeout_ms = 120000\n',
      );
      const loaded = loadConfig({ configPath, env: { TFC_DATA_DIR: dataDir } });
      daemon = await startDaemon(loaded.config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: TOKEN }, logger: pino({ level: 'silent' }) });
      client = new TfcClient({ url: daemon.url, token: TOKEN });
      await until('pool ready', async () => (await client.getPool('default')).ready >= 1, 120_000);
    }, 300_000);

    afterAll(async () => {
      await daemon?.close();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      try {
        // Every fake Firecracker exited, and none saw a request Firecracker would refuse.
        for (const report of allReports()) {
          expect(() => process.kill(report.pid, 0), `fake Firecracker pid ${report.pid} still running`).toThrow();
          expect(report.violations).toEqual([]);
        }
        const liveDir = join(dataDir, 'live-snapshots');
        expect(existsSync(liveDir) ? readdirSync(liveDir) : [], 'unnamed snapshots go with their VM').toEqual([]);
        await assertNothingLeft(dataDir);
        if (jailed && existsSync(join(scratch.path, 'jails')))
          expect(readdirSync(join(scratch.path, 'jails')).flatMap((d) => readdirSync(join(scratch.path, 'jails', d)))).toEqual([]);
      } finally {
        scratch.remove();
      }
    });

    it('snapshots a running VM (Full, own memory file), rolls it back and forks it; every VM runs commands after', async () => {
      const { vm } = await client.allocate('default');
      const created = await client.snapshot(vm.id);
      expect(created.snapshot_id).toMatch(/^snap-[0-9a-f]{12}$/);
      expect(created.size_bytes).toBeGreaterThan(0);
      const info = await client.getSnapshot(created.snapshot_id);
      expect(info.driver).toBe('firecracker');
      expect(info.files?.memory).toMatch(/\/memory$/);
      expect(statSync(info.files!.memory!).isFile()).toBe(true);
      expect(statSync(info.files!.state!).isFile()).toBe(true);
      expect((await client.exec(vm.id, { cmd: ['echo', 'after snapshot'] })).stdout).toBe('after snapshot\n');

      // The conversation: paused, a Full snapshot naming both files (jailed: inside the jail, moved out after), resumed.
      const ops = reportOf(vm.id).requests.filter((r) => r.status < 300);
      const last = ops.filter((r) => r.operationId === 'createSnapshot').at(-1)!;
      expect(last.body).toMatchObject({ snapshot_type: 'Full' });
      expect(Object.keys(last.body!).sort()).toEqual(['mem_file_path', 'snapshot_path', 'snapshot_type']);
      if (!jailed) expect(last.body).toMatchObject({ snapshot_path: info.files!.state, mem_file_path: info.files!.memory });
      const lastIndex = ops.lastIndexOf(last);
      const step = (r: FakeRequest) => `${r.operationId}${r.body?.state ? ` ${String(r.body.state)}` : ''}`;
      expect(ops.slice(lastIndex - 2, lastIndex + 2).map(step)).toEqual(['patchVm Paused', 'describeInstance', 'createSnapshot', 'patchVm Resumed']);

      // Rollback: a new Firecracker for the same VM id loads this snapshot's memory file.
      const rolled = await client.rollback(vm.id, created.snapshot_id);
      expect(rolled.id).toBe(vm.id);
      expect(rolled.state).toBe('running');
      expect((await client.exec(vm.id, { cmd: ['echo', 'rolled back'] })).stdout).toBe('rolled back\n');
      // Its report now is the new process's (same --id): it was restored, not booted.
      const rollbackOps = reportOf(vm.id).requests.filter((r) => r.status < 300);
      expect(rollbackOps.some((r) => r.operationId === 'putGuestBootSource')).toBe(false);
      const rollbackLoad = rollbackOps.find((r) => r.operationId === 'loadSnapshot');
      expect(rollbackLoad?.body).toMatchObject({ resume_vm: false, mem_backend: { backend_type: 'File' } });
      if (!jailed) expect(rollbackLoad?.body).toMatchObject({ snapshot_path: info.files!.state, mem_backend: { backend_path: info.files!.memory } });

      // Fork into 2: each a new VM with its own id that runs commands, under a lease a keepalive extends.
      const forkedAt = Date.now();
      const fork = await client.fork(created.snapshot_id, 2, { ttl_ms: 60_000 });
      expect(fork.vms).toHaveLength(2);
      const ids = fork.vms.map((v) => v.id);
      expect(new Set([...ids, vm.id]).size).toBe(3);
      for (const v of fork.vms) expect(Date.parse(v.expires_at!)).toBeGreaterThanOrEqual(forkedAt + 59_000);
      const kept = await client.keepalive(ids[0]!, { ttl_ms: 3_600_000 });
      expect(Date.parse(kept.expires_at!)).toBeGreaterThan(forkedAt + 3_500_000);
      for (const id of ids) expect((await client.exec(id, { cmd: ['echo', id] })).stdout).toBe(`${id}\n`);
      // A fork whose lease runs out is destroyed.
      const [shortLived] = (await client.fork(created.snapshot_id, 1, { ttl_ms: 1_500 })).vms;
      await until('the expired fork is gone', async () => (await client.listVms()).every((v) => v.id !== shortLived!.id), 30_000);
      await expect(client.fork(created.snapshot_id, 1, { ttl_ms: 86_400_001 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      for (const id of ids) await client.release(id);
      await client.release(vm.id);
      await until('VMs gone', async () => (await client.listVms()).every((v) => !ids.includes(v.id) && v.id !== vm.id), 30_000);
      await expect(client.getSnapshot(created.snapshot_id)).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
    }, 180_000);

    it('pauses a VM to disk (its Firecracker exits) and resumes it under the same id', async () => {
      const { vm } = await client.allocate('default');
      const paused = await client.pause(vm.id, { persist: true });
      expect(paused).toMatchObject({ id: vm.id, state: 'paused_to_disk' });
      expect(paused.snapshot.files?.memory).toMatch(/\/memory$/);
      const firstPid = reportOf(vm.id).pid;
      await until(
        'its Firecracker exited',
        async () => {
          try {
            process.kill(firstPid, 0);
            return false;
          } catch {
            return true;
          }
        },
        20_000,
      );
      const resumed = await client.resume(vm.id, { ttl_ms: 120_000 });
      expect(resumed).toMatchObject({ id: vm.id, state: 'running', pool: null });
      expect(Date.parse(resumed.expires_at!)).toBeGreaterThan(Date.now() + 100_000);
      expect((await client.exec(vm.id, { cmd: ['echo', 'back'] })).stdout).toBe('back\n');
      expect(await client.listSnapshots({ vm_id: vm.id }), 'the pause-to-disk snapshot is used up').toEqual([]);
      await client.release(vm.id);
    }, 180_000);
  });
}
