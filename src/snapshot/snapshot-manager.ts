import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, SnapshotNotFoundError } from '../errors/index.js';
import { SCRATCH_DISK_FILE } from '../vm/disks.js';
import { keepScratchDisk, runWarmup, syncGuest } from './template-steps.js';
import { GUEST_TOOLS_DIR } from '../guest/init-script.js';
import type { BuiltImage } from '../guest/image-store.js';
import type { DataLayout } from '../store/index.js';
import type { SnapshotFiles } from '../vmm/driver.js';
import { kernelArgsFor, type VmProfile, type VmService } from '../vm/vm-service.js';
import type { PhaseTiming } from '../steps/index.js';
import type { Vm } from '../vm/vm.js';
import { ensurePrivateDir, sealReadOnly } from '../security/index.js';
import { snapshotKey, SNAPSHOT_FORMAT, type SnapshotKeyInput } from './snapshot-key.js';

/** manifest.json of one golden snapshot (also the `tfc snapshot ls --json` shape). */
export interface SnapshotManifest {
  format: number;
  key: string;
  profile: string;
  driver: string;
  driver_version: string;
  accel: string;
  image: string;
  image_digest: string;
  vcpus: number;
  memory_mib: number;
  kernel_args: string;
  /** profiles.X.warmup that ran in the template before the snapshot ([] = none; absent in older manifests). */
  warmup?: string[];
  /** profiles.X.disk_mib: size of the scratch disk clones get a copy of (0 = none; absent in older manifests). */
  disk_mib?: number;
  created_at: string;
  /** Template cold boot phases, then warmup and sync (when there is one), pause and snapshot. */
  create_phases: PhaseTiming[];
  files: {
    memory: { size_bytes: number };
    state: { size_bytes: number };
    /** The template's scratch disk: apparent size, and bytes allocated (it is sparse). */
    scratch?: { size_bytes: number; allocated_bytes: number };
  };
}

export interface GoldenSnapshot {
  manifest: SnapshotManifest;
  dir: string;
  files: SnapshotFiles;
  /** The image it was made from; null when that image is no longer the current build (the snapshot is stale). */
  image: BuiltImage | null;
}

/**
 * Creates, finds and removes golden snapshots under data_dir/snapshots.
 * Creation of one key is serialised in-process; the directory appears
 * atomically (rename), so a crash never leaves a half snapshot in use.
 */
export class SnapshotManager {
  private readonly creating = new Map<string, Promise<GoldenSnapshot>>();

  constructor(
    private readonly layout: DataLayout,
    private readonly service: VmService,
  ) {}

  private get root(): string {
    return join(this.layout.root, 'snapshots');
  }

  /**
   * The golden snapshot of `profile` for the current image, driver and
   * driver version, creating it (one cold boot) when missing. Throws
   * ImageNotFoundError, driver and boot errors.
   */
  async ensure(profile: VmProfile, options: { force?: boolean } = {}): Promise<GoldenSnapshot> {
    const { key, keyInput, image } = await this.keyFor(profile);
    // No scan: the directory is named by the key (one manifest read).
    const existing = this.read(join(this.root, dirName(profile.name, key)), image);
    if (existing?.image && !options.force) return existing;
    let pending = this.creating.get(key);
    if (!pending) {
      pending = this.create(profile, key, keyInput, image).finally(() => this.creating.delete(key));
      this.creating.set(key, pending);
    }
    return pending;
  }

  /**
   * A new VM cloned from the profile's golden snapshot (created first when
   * missing). The clone's phases are restore phases. Throws like `ensure`
   * and VmService.restore.
   */
  async clone(profile: VmProfile): Promise<Vm> {
    const snapshot = await this.ensure(profile);
    return this.service.restore({ profile, snapshot: snapshot.files, image: snapshot.image! });
  }

  /** The snapshot `ensure` would use, without creating one; null when absent. */
  async current(profile: VmProfile): Promise<GoldenSnapshot | null> {
    const { key, image } = await this.keyFor(profile);
    const found = this.read(join(this.root, dirName(profile.name, key)), image);
    return found?.image ? found : null;
  }

  list(): GoldenSnapshot[] {
    if (!existsSync(this.root)) return [];
    return (
      readdirSync(this.root)
        .filter((d) => !d.startsWith('.'))
        .map((d) => this.read(join(this.root, d)))
        .filter((s): s is GoldenSnapshot => s !== null)
        // ISO timestamps sort as strings (localeCompare would load ICU collation data first).
        .sort((a, b) => (a.manifest.created_at < b.manifest.created_at ? 1 : a.manifest.created_at > b.manifest.created_at ? -1 : 0))
    );
  }

  /**
   * Removes snapshots whose key starts with `keyPrefix` (at least 4
   * characters, as shown by `tfc snapshot ls`) or whose profile is
   * `keyPrefix`. Returns the removed manifests. Throws
   * SnapshotNotFoundError when nothing matches. Clones that still map a
   * removed memory file keep working (the file lives on until unmapped).
   */
  remove(keyOrProfile: string): SnapshotManifest[] {
    if (keyOrProfile.length < 4) throw new InvalidArgumentError('give a snapshot key prefix of at least 4 characters, or a profile name');
    const matches = this.list().filter((s) => s.manifest.key.startsWith(keyOrProfile) || s.manifest.profile === keyOrProfile);
    if (matches.length === 0) throw new SnapshotNotFoundError(`no snapshot matches "${keyOrProfile}"; list them with \`tfc snapshot ls\``);
    for (const s of matches) rmSync(s.dir, { recursive: true, force: true });
    return matches.map((s) => s.manifest);
  }

  private async keyFor(profile: VmProfile) {
    const driver = this.service.driver(profile.driver);
    const info = await driver.probe();
    const image = this.service.image(profile.image);
    const keyInput = {
      profile: profile.name,
      driver: driver.name,
      driverVersion: info.version,
      accel: info.accel,
      imageDigest: image.manifest.digest,
      vcpus: profile.vcpus,
      memoryMib: profile.memoryMib,
      kernelArgs: kernelArgsFor(driver, profile, image),
      ...(warmupOf(profile).length > 0 ? { warmup: warmupOf(profile) } : {}),
      ...(diskMibOf(profile) > 0 ? { diskMib: diskMibOf(profile) } : {}),
    };
    return { key: snapshotKey(keyInput), keyInput, image };
  }

  private async create(profile: VmProfile, key: string, keyInput: SnapshotKeyInput, image: BuiltImage): Promise<GoldenSnapshot> {
    ensurePrivateDir(this.root);
    const final = join(this.root, dirName(profile.name, key));
    const work = join(this.root, `.${dirName(profile.name, key)}.${process.pid}.tmp`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true, mode: 0o700 });
    const files: SnapshotFiles = {
      memoryPath: join(work, 'memory'),
      statePath: join(work, 'state'),
      ...(diskMibOf(profile) > 0 ? { scratchDiskPath: join(work, SCRATCH_DISK_FILE) } : {}),
    };
    try {
      const template = await this.service.create({ profile, snapshotMemoryPath: files.memoryPath });
      const phases: PhaseTiming[] = [...template.bootPhases];
      try {
        let started = performance.now();
        const warmup = warmupOf(profile);
        if (warmup.length > 0) {
          await runWarmup(template, warmup, profile.bootTimeoutMs);
          phases.push({ name: 'warmup', ms: round(performance.now() - started) });
        }
        if (files.scratchDiskPath) {
          // The clones' copies of the disk must match what the template's
          // memory believes is on it: flush everything before pausing.
          started = performance.now();
          await syncGuest(template, image.rootfsPath ? [`${GUEST_TOOLS_DIR}/busybox`, 'sync'] : ['sync'], profile.bootTimeoutMs);
          phases.push({ name: 'sync', ms: round(performance.now() - started) });
        }
        started = performance.now();
        await template.pause();
        phases.push({ name: 'pause', ms: round(performance.now() - started) });
        started = performance.now();
        await template.createSnapshot(files);
        // The disk as the snapshot's memory knows it: QEMU flushed it when
        // the migration completed, and the template never runs again.
        if (files.scratchDiskPath) await keepScratchDisk(template.scratchDiskPath!, files.scratchDiskPath);
        phases.push({ name: 'snapshot', ms: round(performance.now() - started) });
      } finally {
        // Never resume the template: its RAM file is now the clones' memory.
        await this.service.destroy(template, 'golden snapshot taken');
      }
      const manifest: SnapshotManifest = {
        format: SNAPSHOT_FORMAT,
        key,
        profile: profile.name,
        driver: profile.driver,
        driver_version: keyInput.driverVersion,
        accel: keyInput.accel,
        image: profile.image,
        image_digest: image.manifest.digest,
        vcpus: profile.vcpus,
        memory_mib: profile.memoryMib,
        kernel_args: keyInput.kernelArgs,
        warmup: warmupOf(profile),
        disk_mib: diskMibOf(profile),
        created_at: new Date().toISOString(),
        create_phases: phases,
        files: {
          memory: { size_bytes: statSync(files.memoryPath).size },
          state: { size_bytes: statSync(files.statePath).size },
          ...(files.scratchDiskPath ? { scratch: sizes(files.scratchDiskPath) } : {}),
        },
      };
      writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
      // Clones map (or copy) these files: root-owned and read-only, so no VM uid (the
      // jail user that wrote a Firecracker snapshot included) can change them.
      sealReadOnly([files.memoryPath, files.statePath, ...(files.scratchDiskPath ? [files.scratchDiskPath] : []), join(work, 'manifest.json')]);
      rmSync(final, { recursive: true, force: true });
      renameSync(work, final);
    } catch (err) {
      rmSync(work, { recursive: true, force: true });
      throw err;
    }
    const created = this.read(final);
    if (!created?.image) throw new SnapshotNotFoundError(`snapshot ${final} was written but cannot be read back`);
    return created;
  }

  /** The image a snapshot was made from, if it is still the current build of its name. */
  private imageByDigest(manifest: SnapshotManifest): BuiltImage | null {
    try {
      const image = this.service.image(manifest.image);
      return image.manifest.digest === manifest.image_digest ? image : null;
    } catch {
      return null;
    }
  }

  /** `current`: the image the caller resolved already (used when the snapshot was made from it, saving a second resolve). */
  private read(dir: string, current?: BuiltImage): GoldenSnapshot | null {
    const manifestPath = join(dir, 'manifest.json');
    if (!existsSync(manifestPath)) return null;
    try {
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as SnapshotManifest;
      const files: SnapshotFiles = { memoryPath: join(dir, 'memory'), statePath: join(dir, 'state') };
      if (!existsSync(files.memoryPath) || !existsSync(files.statePath)) return null;
      if (manifest.files.scratch) {
        files.scratchDiskPath = join(dir, SCRATCH_DISK_FILE);
        if (!existsSync(files.scratchDiskPath)) return null;
      }
      sealReadOnly([files.memoryPath, files.statePath]); // snapshots made before files were sealed
      const image = current && current.manifest.digest === manifest.image_digest ? current : this.imageByDigest(manifest);
      return { manifest, dir, files, image };
    } catch {
      return null;
    }
  }
}

function warmupOf(profile: VmProfile): string[] {
  return profile.warmup ?? [];
}

function diskMibOf(profile: VmProfile): number {
  return profile.diskMib ?? 0;
}

function sizes(path: string): { size_bytes: number; allocated_bytes: number } {
  const st = statSync(path);
  return { size_bytes: st.size, allocated_bytes: st.blocks * 512 };
}

function dirName(profile: string, key: string): string {
  return `${profile}-${key.slice(0, 16)}`;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
