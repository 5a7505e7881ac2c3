/**
 * The boot files every image shares: the Debian cloud kernel's ELF vmlinux
 * and the stage-1 initramfs (busybox, virtio/vsock modules in load order,
 * the agent, /init). On its own this is the `minimal` image; images with a
 * root filesystem reuse the same two files (hard links to the minimal
 * build of the same key), so an agent change rebuilds only these.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageBuildFailedError } from '../errors/index.js';
import type { DataLayout } from '../store/layout.js';
import { agentSourceDigest, buildAgent } from './agent-build.js';
import { imageDirName, readImageDir, type BuiltImage, type ImageManifest } from './image-store.js';
import { assembleRoot, packCpio } from './initramfs.js';
import { renderInitScript, type ModuleGroups } from './init-script.js';
import { GUEST_MODULES, resolveModuleGroups, type ResolvedModule } from './kernel-modules.js';
import { downloadKernelPackage, extractDeb, resolveKernelPackage, sha256File, type KernelPackage } from './kernel-package.js';
import { extractVmlinux } from './vmlinux.js';

/** Bumped whenever the boot files' output for the same inputs changes. */
export const BUILDER_VERSION = '1';

/** One named, timed build step; `skip` is asked just before it would run. */
export interface BuildStep {
  name: string;
  run: () => Promise<string | void>;
  skip?: () => boolean;
}

/** What the boot steps learn and make; the image builder's context extends it. */
export interface BootContext {
  pkg?: KernelPackage;
  /** Cache key of the boot files (= the minimal image's key). */
  bootKey?: string;
  busyboxSha?: string;
  agentSha?: string;
  /** The stored boot files when already built (cache hit or just stored). */
  boot?: BuiltImage;
  debPath?: string;
  /** Scratch directory of this build (removed at the end). */
  work?: string;
  modulesDir?: string;
  release?: string;
  modules?: ResolvedModule[];
  groups?: ModuleGroups;
  /** Where the kernel and initramfs are assembled before they are stored. */
  bootOut?: string;
}

export interface BootOptions {
  kernelPackage: string;
  busyboxPath: string;
  force: boolean;
}

/** Cache key of the boot files: every input of the kernel and the initramfs. */
export function bootCacheKey(pkg: KernelPackage, busyboxSha: string, agentSha: string): string {
  const fake = GUEST_MODULES.map((name) => ({ name, path: '' }));
  const initTemplate = renderInitScript({ serial: fake, vsock: fake, net: fake, disk: fake, all: fake });
  return createHash('sha256')
    .update(JSON.stringify({ builder: BUILDER_VERSION, pkg, busyboxSha, agentSha, initTemplate, modules: GUEST_MODULES }))
    .digest('hex');
}

/** Creates the build's scratch directory under the data dir's tmp. */
export function workDir(layout: DataLayout, ctx: BootContext): string {
  if (!ctx.work) {
    mkdirSync(layout.tmp, { recursive: true });
    ctx.work = mkdtempSync(join(layout.tmp, 'image-'));
  }
  return ctx.work;
}

/** "resolve kernel package": which kernel .deb the boot files come from. */
export function resolveKernelStep(options: BootOptions, ctx: BootContext): BuildStep {
  return {
    name: 'resolve kernel package',
    run: async () => {
      ctx.pkg = await resolveKernelPackage(options.kernelPackage);
      return `${ctx.pkg.name} ${ctx.pkg.version}`;
    },
  };
}

/** Computes the boot key and looks for stored boot files (ctx.boot) unless forced. */
export async function checkBootCache(layout: DataLayout, options: BootOptions, ctx: BootContext): Promise<void> {
  if (!existsSync(options.busyboxPath)) {
    throw new ImageBuildFailedError(`${options.busyboxPath} not found; install it with \`apt-get install busybox-static\``);
  }
  ctx.busyboxSha = await sha256File(options.busyboxPath);
  ctx.agentSha = agentSourceDigest();
  ctx.bootKey = bootCacheKey(ctx.pkg!, ctx.busyboxSha, ctx.agentSha);
  const existing = readImageDir(join(layout.images, imageDirName('minimal', ctx.bootKey)));
  if (existing && !options.force) ctx.boot = existing;
}

/** The steps that make vmlinux and initrd.cpio in ctx.bootOut; each skipped when `skip()` says so. */
export function bootBuildSteps(layout: DataLayout, options: BootOptions, ctx: BootContext, skip: () => boolean): BuildStep[] {
  return [
    {
      name: 'download kernel package',
      skip,
      run: async () => {
        ctx.debPath = await downloadKernelPackage(ctx.pkg!, layout.debCache);
        return `${(statSync(ctx.debPath).size / 1048576).toFixed(1)} MiB`;
      },
    },
    {
      name: 'extract kernel package',
      skip,
      run: async () => {
        const work = workDir(layout, ctx);
        await extractDeb(ctx.debPath!, join(work, 'deb'));
        const releases = readdirSync(join(work, 'deb/lib/modules'));
        if (releases.length !== 1) throw new ImageBuildFailedError(`expected one kernel release in ${ctx.debPath}, found: ${releases.join(', ') || 'none'}`);
        ctx.release = releases[0];
        ctx.modulesDir = join(work, 'deb/lib/modules', ctx.release);
        ctx.bootOut = join(work, 'boot-out');
        mkdirSync(ctx.bootOut);
        return ctx.release;
      },
    },
    {
      name: 'extract vmlinux',
      skip,
      run: async () => extractVmlinux(join(ctx.work!, 'deb/boot', `vmlinuz-${ctx.release}`), join(ctx.bootOut!, 'vmlinux'), ctx.work!),
    },
    {
      name: 'resolve kernel modules',
      skip,
      run: async () => {
        ctx.groups = resolveModuleGroups(ctx.modulesDir!);
        ctx.modules = [...ctx.groups.all];
        return `${ctx.modules.length} modules`;
      },
    },
    {
      name: 'build guest agent',
      skip,
      run: async () => {
        await buildAgent(join(ctx.work!, 'tfc-agent'));
        return `${(statSync(join(ctx.work!, 'tfc-agent')).size / 1024).toFixed(0)} KiB static`;
      },
    },
    {
      name: 'assemble initramfs',
      skip,
      run: async () => {
        const root = join(ctx.work!, 'initramfs-root');
        await assembleRoot(root, {
          busyboxPath: options.busyboxPath,
          agentPath: join(ctx.work!, 'tfc-agent'),
          initScript: renderInitScript(ctx.groups!),
          modules: ctx.modules!,
        });
        await packCpio(root, join(ctx.bootOut!, 'initrd.cpio'));
        return `${(statSync(join(ctx.bootOut!, 'initrd.cpio')).size / 1048576).toFixed(1)} MiB`;
      },
    },
  ];
}

/**
 * Writes the minimal manifest into ctx.bootOut and moves it into place as
 * images/minimal-<bootKey>. When another build stored the same key
 * meanwhile, its copy is kept (same inputs, same bytes) unless `force`.
 * Does not move the `minimal` name (the caller writes refs).
 */
export async function storeBootFiles(layout: DataLayout, ctx: BootContext, force: boolean): Promise<ImageManifest> {
  const manifest = await bootManifest(ctx);
  writeFileSync(join(ctx.bootOut!, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  const dest = join(layout.images, imageDirName('minimal', ctx.bootKey!));
  moveIntoPlace(ctx.bootOut!, dest, force);
  const stored = readImageDir(dest);
  if (!stored) throw new ImageBuildFailedError(`image ${dest} was written but cannot be read back`);
  ctx.boot = stored;
  return stored.manifest;
}

/**
 * Renames the finished directory `from` to `dest`. A directory already at
 * `dest` (a concurrent build of the same key) is replaced when `replace`,
 * else kept and `from` discarded; readers never see a half-written `dest`.
 */
export function moveIntoPlace(from: string, dest: string, replace: boolean): void {
  mkdirSync(join(dest, '..'), { recursive: true });
  if (replace) rmSync(dest, { recursive: true, force: true });
  try {
    renameSync(from, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    if (replace) {
      rmSync(dest, { recursive: true, force: true });
      renameSync(from, dest);
    } else {
      rmSync(from, { recursive: true, force: true });
    }
  }
}

async function bootManifest(ctx: BootContext): Promise<ImageManifest> {
  const file = async (p: string) => ({ sha256: await sha256File(p), sizeBytes: statSync(p).size });
  const files = { vmlinux: await file(join(ctx.bootOut!, 'vmlinux')), initrd: await file(join(ctx.bootOut!, 'initrd.cpio')) };
  return {
    schema: 2,
    name: 'minimal',
    kind: 'minimal',
    key: ctx.bootKey!,
    digest: createHash('sha256').update(files.vmlinux.sha256).update(files.initrd.sha256).digest('hex'),
    created_at: new Date().toISOString(),
    builder_version: BUILDER_VERSION,
    kernel: { package: ctx.pkg!.name, version: ctx.pkg!.version, release: ctx.release!, deb_sha256: ctx.pkg!.sha256 },
    busybox_sha256: ctx.busyboxSha!,
    agent_source_sha256: ctx.agentSha!,
    modules: ctx.modules!.map((m) => m.name),
    files,
  };
}
