/**
 * The small parts of the Firecracker driver: the configuration step lists,
 * spec options, metrics parsing and reading (file and FIFO), KVM verdicts,
 * version parsing, config-to-options mapping.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../config/index.js';
import type { VmLaunchSpec } from '../driver.js';
import { bootConfigSteps, restoreConfigSteps } from './config-steps.js';
import { firecrackerDriverOptions, parseFirecrackerVersion, versionAtLeast } from './driver.js';
import { createSinkFile } from './jailer.js';
import { judgeKvm } from './kvm.js';
import { agentPortOf, effectiveOptions, firecrackerOptionsOf } from './launch-options.js';
import { MetricsReader, parseMetricsLines } from './metrics.js';

const dir = mkdtempSync(join(tmpdir(), 'fc-parts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base: VmLaunchSpec = { vmId: 'v', runDir: '/r', consoleLogPath: '/c', kernelPath: '/k', initrdPath: '/i', kernelArgs: '', vcpus: 1, memoryMib: 128 };

describe('configuration step lists', () => {
  it('boot: logger and metrics first, MMDS after the interfaces it needs', () => {
    expect(bootConfigSteps().names()).toEqual([
      'logger',
      'metrics',
      'machine_config',
      'boot_source',
      'drives',
      'network_interfaces',
      'vsock',
      'entropy',
      'mmds_config',
      'mmds_data',
    ]);
  });
  it('restore: the boot list edited to logger, metrics, load_snapshot, mmds_data', () => {
    expect(restoreConfigSteps().names()).toEqual(['logger', 'metrics', 'place_drives', 'load_snapshot', 'mmds_data']);
  });
});

describe('spec.firecracker and kernel arguments', () => {
  it('reads the options through the type guard and checks their shape', () => {
    expect(firecrackerOptionsOf(base)).toEqual({});
    const opts = { drives: [], netns: 'tfc-1', entropy: false as const };
    expect(firecrackerOptionsOf({ ...base, firecracker: opts } as VmLaunchSpec)).toBe(opts);
    expect(() => firecrackerOptionsOf({ ...base, firecracker: { drives: {} } } as unknown as VmLaunchSpec)).toThrow(/drives must be an array/);
    expect(() => firecrackerOptionsOf({ ...base, firecracker: { mmds: { data: {} } } } as unknown as VmLaunchSpec)).toThrow(/mmds must be/);
    expect(() => firecrackerOptionsOf({ ...base, firecracker: 'x' } as unknown as VmLaunchSpec)).toThrow(/must be an object/);
  });
  it("adds the net module's namespace and TAP (spec.network) as eth0, explicit options winning", () => {
    const network = { netns: 'tfc-abc', tapName: 'tap0', guestMac: '06:00:ac:10:00:02' };
    expect(effectiveOptions({ ...base, network })).toEqual({
      networkInterfaces: [{ iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:ac:10:00:02' }],
      netns: 'tfc-abc',
    });
    const own = { networkInterfaces: [{ iface_id: 'eth0', host_dev_name: 'tap9' }], netns: '/run/netns/x' };
    expect(effectiveOptions({ ...base, network, firecracker: own } as VmLaunchSpec)).toEqual(own);
    expect(effectiveOptions(base)).toEqual({});
  });
  it('takes the agent port from tfc.agent_port (the last one wins, as in the guest), default 1024', () => {
    expect(agentPortOf('console=ttyS0 quiet')).toBe(1024);
    expect(agentPortOf('tfc.agent_port=1024 tfc.agent_port=5000')).toBe(5000);
    expect(agentPortOf('tfc.agent_port=0 tfc.agent_port=x')).toBe(1024);
  });
});

describe('metrics', () => {
  it('parses complete JSON lines, keeping the rest and counting what is not metrics', () => {
    const r = parseMetricsLines('{"utc_timestamp_ms":1,"vmm":{"panic_count":0}}\nnot json\n{"x":1}\n{"utc_timestamp_ms":2}\n{"utc_ti');
    expect(r.metrics.map((m) => m.utc_timestamp_ms)).toEqual([1, 2]);
    expect(r.skipped).toBe(2);
    expect(r.rest).toBe('{"utc_ti');
  });

  it('reads a file sink from where it stopped, across partial lines', async () => {
    const path = join(dir, 'metrics.json');
    writeFileSync(path, '');
    const reader = await MetricsReader.open(path, 'file');
    appendFileSync(path, '{"utc_timestamp_ms":1}\n{"utc_timestamp_ms"');
    await reader.poll();
    expect(reader.received).toBe(1);
    appendFileSync(path, ':2}\n');
    expect((await reader.waitForLine(1, 1_000))?.utc_timestamp_ms).toBe(2);
    expect(await reader.waitForLine(2, 50)).toBeUndefined();
    await reader.close();
    await reader.close();
  });

  it('reads a FIFO sink as lines arrive, without end-of-file when writers close', async () => {
    const path = join(dir, 'metrics.fifo');
    await createSinkFile(path, 'fifo');
    const reader = await MetricsReader.open(path, 'fifo');
    for (const n of [1, 2]) {
      // Each write as its own writer that closes, as Firecracker reopening would.
      const { openSync, writeSync, closeSync, constants } = await import('node:fs');
      const fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
      writeSync(fd, `{"utc_timestamp_ms":${n}}\n`);
      closeSync(fd);
      expect((await reader.waitForLine(n - 1, 2_000))?.utc_timestamp_ms).toBe(n);
    }
    expect(reader.lines()).toHaveLength(2);
    await reader.close();
  });
});

describe('host facts and versions', () => {
  it('judges /dev/kvm without refusing anything, with a fix for each problem', () => {
    expect(judgeKvm({ devicePresent: true, deviceUsable: true, pvmLoaded: false })).toEqual({ usable: true, reason: '/dev/kvm is present and accessible' });
    expect(judgeKvm({ devicePresent: false, deviceUsable: false, pvmLoaded: false })).toMatchObject({
      usable: false,
      fix: expect.stringContaining('kvm_intel'),
    });
    expect(judgeKvm({ devicePresent: true, deviceUsable: false, pvmLoaded: false })).toMatchObject({ usable: false, fix: expect.stringContaining('group') });
    expect(judgeKvm({ devicePresent: true, deviceUsable: true, pvmLoaded: true })).toMatchObject({
      usable: false,
      reason: expect.stringContaining('nested PVM'),
    });
  });
  it('parses `firecracker --version` and compares versions', () => {
    expect(parseFirecrackerVersion('Firecracker v1.12.0\n\nSupported snapshot data format versions: v6.0.0\n')).toBe('1.12.0');
    expect(parseFirecrackerVersion('Firecracker v1.17.0-dev')).toBe('1.17.0-dev');
    expect(parseFirecrackerVersion('qemu 7.2')).toBeNull();
    expect(versionAtLeast('1.8.0', 1, 8)).toBe(true);
    expect(versionAtLeast('1.7.9', 1, 8)).toBe(false);
    expect(versionAtLeast('2.0.0', 1, 8)).toBe(true);
  });
  it('maps the config to driver options, the jailer (on by default) only when enabled', () => {
    const config = defaultConfig({ env: { HOME: '/h' }, uid: 1000 });
    expect(firecrackerDriverOptions(config).jailer).toEqual({
      binary: 'jailer',
      uid: 65534,
      gid: 65534,
      chrootBaseDir: '/srv/jailer',
      cgroupVersion: 2,
      parentCgroup: '',
      cgroups: [],
      resourceLimits: [],
      netns: '',
    });
    config.vmm.firecracker.jailer.enabled = false;
    expect(firecrackerDriverOptions(config)).toEqual({
      binary: 'firecracker',
      apiTimeoutMs: 5000,
      logLevel: 'info',
      metricsSink: 'file',
      jailer: null,
      exec: { nice: 10, disableThp: false },
      cacheDir: `${config.dataDir}/cache/vmm`,
    });
  });
});
