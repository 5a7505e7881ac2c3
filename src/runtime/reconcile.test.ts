import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dataLayout, openDatabase, VmRepository } from '../store/index.js';
import { FirecrackerDriver } from '../vmm/firecracker/driver.js';
import { RUN_DIR_OWNER_FILE } from '../vm/boot-steps.js';
import { reconcileAtStart } from './reconcile.js';
import { processStartTime } from '../process/index.js';

describe('reconcileAtStart', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stops VMs of dead owners, keeps those of live ones, removes leftovers', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-reconcile-'));
    const layout = dataLayout(dir);
    const db = openDatabase(layout.database);
    const repo = new VmRepository(db);
    const vm = (id: string, driver = 'qemu') =>
      repo.insert({
        id,
        driver,
        profile: 'minimal',
        imageDigest: null,
        state: 'running',
        accel: 'tcg',
        vcpus: 1,
        memoryMib: 256,
        pid: null,
        runDir: join(layout.runVms, id),
        consoleLog: null,
      });
    vm('vm-dead00000001');
    vm('vm-dead00000002', 'firecracker');
    vm('vm-live00000001');
    // Ownership as another process would have recorded it: a dead pid, and a live child.
    const sleeper = spawn('sleep', ['30']);
    db.prepare("UPDATE vms SET owner_pid = 999999999 WHERE id LIKE 'vm-dead%'").run();
    db.prepare("UPDATE vms SET owner_pid = ?, owner_start = ? WHERE id = 'vm-live00000001'").run(sleeper.pid, processStartTime(sleeper.pid!));
    for (const id of ['vm-dead00000001', 'vm-live00000001', 'vm-stby00000001', 'vm-stby00000002']) mkdirSync(join(layout.runVms, id), { recursive: true });
    // Standby VMMs' run dirs have no store row: one owned by a live process (kept), one by a dead one (removed).
    writeFileSync(join(layout.runVms, 'vm-stby00000001', RUN_DIR_OWNER_FILE), JSON.stringify({ pid: sleeper.pid, start: processStartTime(sleeper.pid!) }));
    writeFileSync(join(layout.runVms, 'vm-stby00000002', RUN_DIR_OWNER_FILE), JSON.stringify({ pid: sleeper.pid, start: 1 }));
    mkdirSync(join(layout.tmp, 'image-old'), { recursive: true });
    mkdirSync(join(layout.tmp, 'image-fresh'), { recursive: true });
    utimesSync(join(layout.tmp, 'image-old'), new Date(0), new Date(0));
    mkdirSync(join(dir, 'snapshots', '.minimal-abc.999999999.tmp'), { recursive: true });
    // A stale jail of the Firecracker VM.
    const jailBase = join(dir, 'jails');
    const jail = join(jailBase, 'firecracker', 'vm-dead00000002', 'root');
    mkdirSync(jail, { recursive: true });
    writeFileSync(join(jail, 'vmlinux'), 'x');
    const firecracker = new FirecrackerDriver({
      binary: 'firecracker',
      apiTimeoutMs: 1000,
      logLevel: 'info',
      metricsSink: 'file',
      jailer: {
        binary: 'jailer',
        uid: 65534,
        gid: 65534,
        chrootBaseDir: jailBase,
        cgroupVersion: 2,
        parentCgroup: '',
        cgroups: [],
        resourceLimits: [],
        netns: '',
      },
    });

    try {
      const report = reconcileAtStart(layout, repo, { firecracker });
      expect(report.vmsMarkedStopped.sort()).toEqual(['vm-dead00000001', 'vm-dead00000002']);
      expect(repo.get('vm-live00000001').state).toBe('running');
      expect(repo.get('vm-dead00000001').state).toBe('stopped');
      expect(report.runDirsRemoved.sort()).toEqual(['vm-dead00000001', 'vm-stby00000002']);
      expect(existsSync(join(layout.runVms, 'vm-stby00000001'))).toBe(true);
      expect(existsSync(join(layout.runVms, 'vm-live00000001'))).toBe(true);
      expect(existsSync(join(layout.tmp, 'image-old'))).toBe(false);
      expect(existsSync(join(layout.tmp, 'image-fresh'))).toBe(true);
      expect(existsSync(join(dir, 'snapshots', '.minimal-abc.999999999.tmp'))).toBe(false);
      expect(report.driverLeftovers).toEqual([join(jailBase, 'firecracker', 'vm-dead00000002')]);
      expect(existsSync(join(jailBase, 'firecracker', 'vm-dead00000002'))).toBe(false);
    } finally {
      sleeper.kill();
      db.close();
    }
  });
});
