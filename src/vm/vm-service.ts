import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, TfcError } from '../errors/index.js';
import { resolveImage, type BuiltImage } from '../guest/image-store.js';
import type { DataLayout, VmRepository } from '../store/index.js';
import type { DriverName, SnapshotFiles, VmmDriver } from '../vmm/driver.js';
import { Vm, type VmBootOptions } from './vm.js';
import { standbyKey, StandbyVmms, type StandbyBootOptions, type StandbyStatus, type StandbyVmmsOptions } from './standby.js';
import { diskKernelArgs, SCRATCH_DISK_FILE } from './disks.js';
import { bootLevelArgs } from './boot-levels.js';
import { guestKernelNetArg, NetworkUnavailableError, type NetworkManager } from '../net/index.js';
import type { Profile } from '../config/index.js';

/** The profile fields a VM is made from (config [profiles.NAME]). */
/**
 * The profile fields a VM is made from (config [profiles.NAME]); `network`
 * may be absent (no network device at all).
 */
export type VmProfile = Omit<Profile, 'network'> & { network?: Profile['network'] };

export interface CreateVmRequest {
  profile: VmProfile;
  /** Boot with RAM in this file so the VM can become a golden snapshot. */
  snapshotMemoryPath?: string;
  /** Per-request overrides of the profile (CLI --driver, --vcpus, --memory-mib). */
  driver?: DriverName;
  vcpus?: number;
  memoryMib?: number;
}

export interface VmServiceOptions {
  layout: DataLayout;
  repo: VmRepository;
  drivers: Partial<Record<DriverName, VmmDriver>>;
  /** Grace for a guest to power off when stopping, every driver (config vmm.stop_timeout_ms). */
  stopTimeoutMs: number;
  /** Console logs kept in data_dir/logs (oldest removed first). Default 50. */
  consoleLogsKept?: number;
  /** Cap of each VM's console log (config vmm.console_log_max_bytes). Default 8 MiB. */
  consoleLogMaxBytes?: number;
  /** Makes per-VM networks; needed only for profiles with networking enabled. */
  networks?: NetworkManager;
  /** Told about every VM that became ready, and every creation that failed (metrics); `vmState`: every state change of every VM (the event stream). */
  observer?: { vmReady(vm: Vm): void; vmFailed(driver: string, code: string): void; vmState?(vmId: string, from: string, to: string, reason?: string): void };
  /**
   * The built image a name stands for. Default: the image store's current
   * build (resolveImage). Golden snapshots resolve through it too.
   */
  images?: (name: string) => BuiltImage;
  /**
   * Keep standby VMMs for restores of golden snapshots (profiles.X.standby_vmms;
   * docs/snapshots.md#standby-vmms): `true` or tuning options. Worth it in a
   * long-lived process only (the daemon): a one-shot `tfc vm run` would start
   * standbys it never uses. Default off.
   */
  standbyVmms?: boolean | StandbyVmmsOptions;
}

/**
 * Creates and tracks VMs: picks the driver, resolves the image, assigns an
 * id and paths, boots. Owns every VM it created until stopped; `stopAll`
 * releases them all (used on exit and daemon shutdown).
 */
export class VmService {
  private readonly live = new Map<string, Vm>();
  private readonly starting = new Set<Promise<Vm>>();
  private lastPrune = 0;
  private readonly standbys?: StandbyVmms;

  constructor(private readonly options: VmServiceOptions) {
    if (options.standbyVmms) this.standbys = new StandbyVmms(options.standbyVmms === true ? {} : options.standbyVmms);
  }

  /**
   * Boots a fresh VM from a profile. Throws InvalidArgumentError for bad
   * overrides, ImageNotFoundError when the image is not built, driver errors
   * (VMM_BINARY_NOT_FOUND, ...) and boot errors (VM_BOOT_TIMEOUT, VMM_EXITED).
   */
  async create(request: CreateVmRequest): Promise<Vm> {
    const prepared = this.prepare(request);
    return this.track(
      Vm.boot({ ...prepared, ...(request.snapshotMemoryPath ? { snapshotMemoryPath: request.snapshotMemoryPath } : {}) }),
      prepared.driver.name,
    );
  }

  /**
   * Creates a VM as a copy-on-write clone of `snapshot` (made from this
   * profile; its image must still exist). Same errors as `create`.
   * `revive`: the id of a VM paused to disk coming back under that id;
   * `subnet`: its earlier network subnet, taken again when free (same address).
   * With standby VMMs on (VmServiceOptions.standbyVmms), a VM without a
   * network adopts a waiting VMM of the same snapshot and launch spec when
   * there is one (Vm.fromStandby), and the snapshot's standbys are refilled
   * in the background afterwards (profiles.X.standby_vmms of them).
   */
  async restore(request: CreateVmRequest & { snapshot: SnapshotFiles; image: BuiltImage; revive?: string; subnet?: string }): Promise<Vm> {
    const prepared = this.prepare(request, request.image, request.revive);
    if (prepared.network && request.subnet) prepared.network.preferSubnet = request.subnet;
    if (request.revive && this.live.has(request.revive)) throw new InvalidArgumentError(`VM ${request.revive} is running already`);
    const plan = this.standbyPlan(request, prepared);
    const standby = plan ? this.standbys!.take(plan.key) : undefined;
    const options: VmBootOptions = standby
      ? {
          ...prepared,
          id: standby.options.id,
          runDir: standby.options.runDir,
          consoleLogPath: standby.options.consoleLogPath,
          ...(standby.options.scratchDisk ? { scratchDisk: standby.options.scratchDisk } : {}),
          standby,
        }
      : prepared;
    try {
      return await this.track(Vm.restore({ ...options, snapshot: request.snapshot, ...(request.revive ? { revive: true } : {}) }), prepared.driver.name);
    } catch (err) {
      // Vm.restore releases an adopted standby with the VM; this covers a failure before it adopted it.
      await standby?.cleanup.run();
      throw err;
    } finally {
      // After the restore, so starting the next VMM does not compete with it for the CPU.
      if (plan) this.standbys!.want(plan.key, plan.count, plan.make, request.snapshot);
    }
  }

  /**
   * Which standbys a restore may take and asks for, or undefined when it
   * cannot use one: standbys off, a VM paused to disk coming back under its
   * own id, a VM with a network (its VMM runs in a namespace made for it, and
   * other tfc processes sweep namespaces of VMs the store does not know), or
   * a snapshot that holds all RAM in its state file (live snapshots).
   */
  private standbyPlan(
    request: CreateVmRequest & { snapshot: SnapshotFiles; image: BuiltImage; revive?: string },
    prepared: VmBootOptions,
  ): { key: string; count: number; make: () => StandbyBootOptions } | undefined {
    if (!this.standbys || request.revive || prepared.network || request.snapshot.memoryInState) return undefined;
    return {
      key: standbyKey({ ...prepared, snapshot: request.snapshot }),
      count: request.profile.standbyVmms ?? 0,
      make: () => ({ ...this.prepare(request, request.image), snapshot: request.snapshot }),
    };
  }

  /** The standby VMMs kept per snapshot (empty when standbys are off). */
  standbyStatus(): StandbyStatus[] {
    return this.standbys?.status() ?? [];
  }

  /**
   * Owns a VM from the moment its creation starts, so `stopAll` (Ctrl-C,
   * daemon shutdown) also stops VMs that were still booting.
   */
  private async track(creating: Promise<Vm>, driver: string): Promise<Vm> {
    this.starting.add(creating);
    try {
      const vm = await creating;
      this.live.set(vm.id, vm);
      this.options.observer?.vmReady(vm);
      return vm;
    } catch (err) {
      this.options.observer?.vmFailed(driver, err instanceof TfcError ? err.code : 'INTERNAL');
      throw err;
    } finally {
      this.starting.delete(creating);
    }
  }

  /** The driver called `name`; throws InvalidArgumentError listing the available ones. */
  driver(name: DriverName): VmmDriver {
    const driver = this.options.drivers[name];
    if (!driver) {
      throw new InvalidArgumentError(`driver "${name}" is not available here; available: ${Object.keys(this.options.drivers).join(', ')}`);
    }
    return driver;
  }

  /** The current build of image `name` (VmServiceOptions.images). Throws ImageNotFoundError. */
  image(name: string): BuiltImage {
    return this.options.images ? this.options.images(name) : resolveImage(this.options.layout, name);
  }

  /** Every VM this service currently owns. */
  list(): Vm[] {
    return [...this.live.values()];
  }

  /** `reviveId`: the id of a stopped VM coming back from a pause to disk (VmBootOptions.revive); default a new id. */
  private prepare(request: CreateVmRequest, image?: BuiltImage, reviveId?: string): VmBootOptions {
    const driver = this.driver(request.driver ?? request.profile.driver);
    const vcpus = request.vcpus ?? request.profile.vcpus;
    const memoryMib = request.memoryMib ?? request.profile.memoryMib;
    if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 32) throw new InvalidArgumentError(`vcpus must be an integer from 1 to 32, got ${vcpus}`);
    if (!Number.isInteger(memoryMib) || memoryMib < 64 || memoryMib > 65536) {
      throw new InvalidArgumentError(`memory_mib must be an integer from 64 to 65536, got ${memoryMib}`);
    }
    const id = reviveId ?? `vm-${randomBytes(6).toString('hex')}`;
    const runDir = join(this.options.layout.runVms, id);
    mkdirSync(this.options.layout.logs, { recursive: true });
    this.pruneConsoleLogs();
    const wantsNetwork = request.profile.network?.enabled === true;
    if (wantsNetwork && !this.options.networks) {
      throw new NetworkUnavailableError(
        `profile ${request.profile.name} enables networking, but this tfc process has no network manager (networking needs root; see tfc doctor)`,
      );
    }
    const { network } = request.profile;
    const resolved = image ?? this.image(request.profile.image);
    return {
      ...(wantsNetwork
        ? {
            network: {
              manager: this.options.networks!,
              policy: {
                ...(network?.egressAllow ? { egressAllow: network.egressAllow } : {}),
                ...(network?.egressDeny ? { egressDeny: network.egressDeny } : {}),
                ...(network?.bandwidthMbit ? { bandwidthMbit: network.bandwidthMbit } : {}),
              },
            },
          }
        : {}),
      id,
      profileName: request.profile.name,
      driver,
      image: resolved,
      vcpus,
      memoryMib,
      kernelArgs: kernelArgsFor(driver, request.profile, resolved),
      bootTimeoutMs: request.profile.bootTimeoutMs,
      stopTimeoutMs: this.options.stopTimeoutMs,
      runDir,
      ...(scratchMib(request.profile) > 0 ? { scratchDisk: { path: join(runDir, SCRATCH_DISK_FILE), sizeMib: scratchMib(request.profile) } } : {}),
      consoleLogPath: join(this.options.layout.logs, `${id}.console.log`),
      ...(this.options.consoleLogMaxBytes ? { consoleLogMaxBytes: this.options.consoleLogMaxBytes } : {}),
      repo: this.options.repo,
      ...(this.options.observer?.vmState ? { onStateChange: this.options.observer.vmState.bind(this.options.observer) } : {}),
    };
  }

  get(id: string): Vm | undefined {
    return this.live.get(id);
  }

  /** Stops one VM this service owns and forgets it; then tells the onDestroyed listeners. */
  async destroy(vm: Vm, reason = 'destroyed'): Promise<void> {
    try {
      await vm.stop(reason);
    } finally {
      this.live.delete(vm.id);
      for (const listener of [...this.destroyListeners]) {
        try {
          listener(vm.id);
        } catch {
          // a listener's failure (its own store write) must not fail the destroy
        }
      }
    }
  }

  private readonly destroyListeners = new Set<(vmId: string) => void>();

  /** Calls `listener` with the id of every VM destroyed through `destroy` (live snapshots go with their VM). Returns an unsubscribe. */
  onDestroyed(listener: (vmId: string) => void): () => void {
    this.destroyListeners.add(listener);
    return () => this.destroyListeners.delete(listener);
  }

  /**
   * Stops every standby VMM (for good: later restores spawn their own) and
   * every VM still owned, waiting first for VMs still being created (a
   * failed creation cleans up after itself); never throws.
   */
  async stopAll(reason = 'shutting down'): Promise<void> {
    await this.standbys?.close();
    await Promise.allSettled([...this.starting]);
    await Promise.allSettled([...this.live.values()].map((vm) => this.destroy(vm, reason)));
  }

  /**
   * Keeps the newest `consoleLogsKept` logs of VMs that are gone; logs of
   * VMs this service runs are never removed. At most once a minute (not on
   * every refill), and tolerant of another tfc process pruning at the same time.
   */
  private pruneConsoleLogs(): void {
    const now = Date.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    const keep = this.options.consoleLogsKept ?? 50;
    const dir = this.options.layout.logs;
    const logs: Array<{ path: string; mtime: number }> = [];
    // VMs of other tfc processes sharing this data dir count as live too: their
    // logs are open, and removing one would leave it growing unseen.
    let others: Set<string>;
    try {
      others = new Set(this.options.repo.list({ states: ['creating', 'booting', 'running', 'paused', 'stopping'] }).map((v) => v.id));
    } catch {
      return; // the store cannot say which VMs live: prune next time
    }
    for (const f of readdirSync(dir)) {
      const id = f.slice(0, -'.console.log'.length);
      if (!f.endsWith('.console.log') || this.live.has(id) || others.has(id) || this.standbys?.owns(id)) continue;
      try {
        logs.push({ path: join(dir, f), mtime: statSync(join(dir, f)).mtimeMs });
      } catch {
        // removed meanwhile by another process
      }
    }
    logs.sort((a, b) => b.mtime - a.mtime);
    for (const old of logs.slice(keep)) {
      rmSync(old.path, { force: true });
      rmSync(`${old.path}.1`, { force: true }); // its rotated predecessor (src/vmm/console-log.ts)
    }
  }
}

/**
 * Driver base args, then the boot level's, the network's and the disks'
 * (tfc.root with an image that has a root filesystem, tfc.scratch with
 * disk_mib > 0), then the profile's own (which win where the kernel takes
 * the last value). Golden snapshots are keyed by the result.
 */
export function kernelArgsFor(
  driver: VmmDriver,
  profile: Pick<VmProfile, 'bootLevel' | 'kernelArgs' | 'network'> & { diskMib?: number },
  image?: BuiltImage,
): string {
  // The guest address is the same in every VM (each has its own namespace), so clones need no re-addressing.
  const net = profile.network?.enabled ? [guestKernelNetArg()] : [];
  const disks = diskKernelArgs({ rootfs: image !== undefined && image.rootfsPath !== undefined, scratch: scratchMib(profile) > 0 });
  return [driver.baseKernelArgs(), ...bootLevelArgs(profile.bootLevel), ...net, ...disks, profile.kernelArgs].filter((a) => a.trim()).join(' ');
}

/** profiles.X.disk_mib; 0 (no scratch disk) for profile objects made before the field existed. */
function scratchMib(profile: { diskMib?: number }): number {
  return profile.diskMib ?? 0;
}
