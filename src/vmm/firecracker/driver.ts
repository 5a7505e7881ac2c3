import type { VmmPrivilege } from '../../security/index.js';
import { existsSync } from 'node:fs';
import type { Config } from '../../config/index.js';
import { InvalidArgumentError, VmmBinaryNotFoundError, VmmSpawnFailedError } from '../../errors/index.js';
import { findExecutable, runCommand } from '../../process/index.js';
import type { CleanupStack } from '../../steps/index.js';
import type { DriverInfo, VmLaunchSpec, VmmDriver } from '../driver.js';
import { DEFAULT_API_TIMEOUT_MS } from './api-client.js';
import { FirecrackerInstance } from './instance.js';
import { firecrackerId, jailCgroupDirs, jailLayout, readMounts, removeJail, type JailerOptions } from './jailer.js';
import { gatherKvmFacts, judgeKvm, type KvmFacts } from './kvm.js';
import { DEFAULT_AGENT_PORT, effectiveOptions } from './launch-options.js';
import { launchFirecracker } from './launcher.js';
import { VersionCache, VmmExec, versionCacheFile, vmmCacheDir, type VmmExecSettings } from '../../launcher/index.js';
import type { FirecrackerLogLevel } from './log-file.js';
import type { MetricsSink } from './metrics.js';

/** What to do when Firecracker is missing: it is not in npm's or Debian's registries. */
export const FIRECRACKER_INSTALL_HINT =
  'install Firecracker >= 1.8 from its release tarball (https://github.com/firecracker-microvm/firecracker/releases; it is not packaged in npm or Debian) and set vmm.firecracker.binary or FIRECRACKER_BIN; see docs/firecracker.md';

/**
 * Kernel arguments the Firecracker driver always needs: the serial console
 * (where init prints its markers), `reboot=k` so a guest reboot (the agent's
 * shutdown) makes Firecracker exit, `panic=1` so a panicking guest reboots,
 * i.e. ends, instead of hanging, and the agent channel. No `pci=off`:
 * Firecracker >= 1.8 describes its virtio-mmio devices through ACPI.
 */
export const FIRECRACKER_BASE_KERNEL_ARGS = `console=ttyS0 reboot=k panic=1 tfc.agent=vsock tfc.agent_port=${DEFAULT_AGENT_PORT}`;

export interface FirecrackerDriverOptions {
  /** Config vmm.firecracker.binary (env FIRECRACKER_BIN): a name looked up in PATH or a path. Default "firecracker". */
  binary: string;
  /** Config vmm.firecracker.api_timeout_ms: time each API request may take. Default 5000. */
  apiTimeoutMs?: number;
  /** How long to wait for the API socket after spawning. Default 10000 (the jailer and cold caches add to Firecracker's few ms). */
  spawnTimeoutMs?: number;
  /** Snapshot create/load timeout: they move guest memory. Default 120000. */
  snapshotTimeoutMs?: number;
  /** Config vmm.firecracker.log_level. Default "info". */
  logLevel?: FirecrackerLogLevel;
  /** Config vmm.firecracker.metrics_sink. Default "file". */
  metricsSink?: MetricsSink;
  /** Config [vmm.firecracker.jailer] when enabled (binary as configured, resolved by probe()); null/absent = no jailer. */
  jailer?: JailerOptions | null;
  /** Environment for the VMM process. Default: this process's. */
  env?: NodeJS.ProcessEnv;
  /**
   * With the jailer, each VM's jail user is a uid of its own from these
   * leases (config security.*; src/security) instead of `jailer.uid`/`gid`.
   * Null/absent: every jail uses `jailer.uid`/`gid`.
   */
  privilege?: VmmPrivilege | null;
  /** Injected host facts, for tests. */
  kvmFacts?: KvmFacts;
  /** CPU priority of a plain (not jailed) Firecracker (config vmm.nice; THP is not changed), through the tfc-vmm-exec launcher. Default: unchanged. */
  exec?: VmmExecSettings;
  /** `<data_dir>/cache/vmm`: the launcher and the `--version` cache. Null/absent: nothing on disk. */
  cacheDir?: string | null;
}

/** The driver options a Config asks for. Pure. */
export function firecrackerDriverOptions(config: Config): FirecrackerDriverOptions {
  const fc = config.vmm.firecracker;
  const { enabled, ...jailer } = fc.jailer;
  return {
    binary: fc.binary,
    apiTimeoutMs: fc.apiTimeoutMs,
    logLevel: fc.logLevel,
    metricsSink: fc.metricsSink,
    jailer: enabled ? jailer : null,
    exec: { nice: config.vmm.nice, disableThp: false },
    cacheDir: vmmCacheDir(config.dataDir),
  };
}

/** `1.12.0` from `Firecracker v1.12.0` (the first line of `firecracker --version`); null when absent. Pure. */
export function parseFirecrackerVersion(text: string): string | null {
  return /Firecracker v?(\d+\.\d+\.\d+[^\s]*)/.exec(text)?.[1] ?? null;
}

/** True when `version` (e.g. "1.8.0", "1.17.0-dev") is at least major.minor. Unknown versions count as new enough. */
export function versionAtLeast(version: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) return true;
  return Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor);
}

/**
 * The Firecracker driver: one Firecracker process per VM, configured over
 * its API socket, the guest agent over hybrid vsock, optionally jailed.
 * Always KVM: it does not judge /dev/kvm before trying (Firecracker reports
 * KVM problems itself at InstanceStart or snapshot load, and that message is
 * what the caller gets); probe() records what the host looks like in
 * `accelReason`, and `tfc doctor` judges the host.
 */
export class FirecrackerDriver implements VmmDriver {
  readonly name = 'firecracker' as const;
  private info: Promise<DriverInfo & { jailerBinary: string | null }> | undefined;
  private readonly exec: VmmExec;
  private readonly versions: VersionCache;

  constructor(private readonly options: FirecrackerDriverOptions) {
    this.exec = new VmmExec(options.exec ?? { nice: 0, disableThp: false }, options.cacheDir ?? null);
    this.versions = new VersionCache(options.cacheDir ? versionCacheFile(options.cacheDir) : null);
  }

  /**
   * Finds the binary (and the jailer when configured) and reads its version;
   * memoised, retried after a failure. Throws VmmBinaryNotFoundError with the
   * install hint, VmmSpawnFailedError when `--version` does not run.
   */
  probe(): Promise<DriverInfo> {
    return this.probeAll();
  }

  baseKernelArgs(): string {
    return FIRECRACKER_BASE_KERNEL_ARGS;
  }

  /** The jail (and its cgroups) of a VM whose owner died; nothing when the jailer is off. */
  removeLeftovers(vmId: string): string[] {
    const jailer = this.options.jailer;
    if (!jailer) return [];
    const id = firecrackerId(vmId);
    const layout = jailLayout(jailer, this.options.binary, id);
    if (!existsSync(layout.jailDir)) return [];
    try {
      removeJail(layout, jailCgroupDirs(jailer, layout.execName, id, readMounts()));
      return [layout.jailDir];
    } catch {
      return [];
    }
  }

  /**
   * Starts Firecracker (through the jailer when configured) with its files
   * in spec.runDir or the jail, and returns once the API answers; nothing is
   * configured yet. With spec.restoreFrom the process waits for
   * loadSnapshot(). With spec.network it runs in that namespace and the
   * guest gets `eth0` on its TAP (see effectiveOptions). Throws InvalidArgumentError (snapshot files missing, bad
   * spec.firecracker), VmmBinaryNotFoundError, VmmSpawnFailedError,
   * VmmExitedError. Everything made is registered on `cleanup`.
   */
  async spawn(spec: VmLaunchSpec, cleanup: CleanupStack): Promise<FirecrackerInstance> {
    const info = await this.probeAll();
    const options = effectiveOptions(spec);
    if (spec.restoreFrom) {
      for (const path of [spec.restoreFrom.memoryPath, spec.restoreFrom.statePath]) {
        if (!existsSync(path)) throw new InvalidArgumentError(`snapshot file ${path} does not exist; recreate the snapshot`);
      }
    }
    const apiTimeoutMs = this.options.apiTimeoutMs ?? DEFAULT_API_TIMEOUT_MS;
    const metricsSink = this.options.metricsSink ?? 'file';
    let jailer = this.options.jailer && info.jailerBinary ? { ...this.options.jailer, binary: info.jailerBinary } : null;
    if (jailer && this.options.privilege) {
      // Registered first, so released last: after Firecracker exited and its jail is gone.
      const lease = this.options.privilege.leases.acquire(spec.vmId);
      cleanup.push(`release VM uid ${lease.uid}`, () => lease.release());
      jailer = { ...jailer, uid: lease.uid, gid: lease.gid };
    }
    const vmm = await launchFirecracker(
      spec,
      options,
      {
        binary: info.binary,
        jailer,
        apiTimeoutMs,
        spawnTimeoutMs: this.options.spawnTimeoutMs ?? 10_000,
        metricsSink,
        ...(this.options.env ? { env: this.options.env } : {}),
        exec: this.exec,
      },
      cleanup,
    );
    return new FirecrackerInstance(vmm, spec, options, {
      logLevel: this.options.logLevel ?? 'info',
      metricsSink,
      snapshotTimeoutMs: Math.max(this.options.snapshotTimeoutMs ?? 120_000, apiTimeoutMs),
    });
  }

  private probeAll(): Promise<DriverInfo & { jailerBinary: string | null }> {
    if (!this.options.jailer) void this.exec.prepare(); // the launcher's first build overlaps the probe; never throws
    this.info ??= this.doProbe();
    this.info.catch(() => {
      this.info = undefined; // let a fixed host (binary installed) be probed again
    });
    return this.info;
  }

  private async doProbe(): Promise<DriverInfo & { jailerBinary: string | null }> {
    const binary = findExecutable(this.options.binary);
    if (!binary) throw new VmmBinaryNotFoundError(`Firecracker binary "${this.options.binary}" not found; ${FIRECRACKER_INSTALL_HINT}`);
    let jailerBinary: string | null = null;
    if (this.options.jailer) {
      jailerBinary = findExecutable(this.options.jailer.binary);
      if (!jailerBinary) {
        throw new VmmBinaryNotFoundError(
          `Firecracker jailer "${this.options.jailer.binary}" not found (vmm.firecracker.jailer.enabled = true); it ships in the same release tarball as Firecracker: install it and set vmm.firecracker.jailer.binary, or disable the jailer`,
        );
      }
    }
    let out: string;
    try {
      // Cached per binary file (path, size, mtime, inode): a one-shot `tfc vm run` skips the exec.
      out = await this.versions.output(binary, async () =>
        (await runCommand(binary, ['--version'], { timeoutMs: 10_000, ...(this.options.env ? { env: this.options.env } : {}) })).stdout.toString(),
      );
    } catch (err) {
      throw new VmmSpawnFailedError(
        `${binary} --version failed (${(err as Error).message}); is it a Firecracker binary for this machine? ${FIRECRACKER_INSTALL_HINT}`,
        { cause: err },
      );
    }
    const version = parseFirecrackerVersion(out) ?? 'unknown';
    const kvm = judgeKvm(this.options.kvmFacts ?? gatherKvmFacts());
    const accelReason = kvm.usable ? `Firecracker always uses KVM; ${kvm.reason}` : `Firecracker always uses KVM; ${kvm.reason} (run \`tfc doctor\`)`;
    return { name: 'firecracker', binary, version, accel: 'kvm', accelReason, jailerBinary };
  }
}
