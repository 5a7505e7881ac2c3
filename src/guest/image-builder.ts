import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageBuildFailedError } from '../errors/index.js';
import { IMAGE_NAMES } from '../config/index.js';
import type { DataLayout } from '../store/layout.js';
import { agentSourceDigest, buildAgent } from './agent-build.js';
import { extractVmlinux } from './vmlinux.js';
import { assembleRoot, packCpio } from './initramfs.js';
import { renderInitScript, type ModuleGroups } from './init-script.js';
import { downloadKernelPackage, extractDeb, resolveKernelPackage, sha256File, type KernelPackage } from './kernel-package.js';
import { GUEST_MODULES, resolveModules, type ResolvedModule } from './kernel-modules.js';
import { imageDirName, readImageDir, writeImageRef, type BuiltImage, type ImageManifest } from './image-store.js';

/** Bumped whenever the builder's output for the same inputs changes. */
export const BUILDER_VERSION = '1';

export interface ImageBuildOptions {
  /** Image name (profiles reference it). Only "minimal" exists for now. */
  name: string;
  /** Config images.kernel_package. */
  kernelPackage: string;
  /** Static busybox (Debian busybox-static). Default /bin/busybox. */
  busyboxPath?: string;
  /** Rebuild even when the cache has the image. Default false. */
  force?: boolean;
}

/** Receives progress; the CLI renders it, tests may ignore it. */
export interface BuildProgress {
  step(index: number, total: number, name: string): void;
  stepDone(name: string, ms: number, note?: string): void;
}

export interface ImageBuildResult {
  image: BuiltImage;
  cacheHit: boolean;
  steps: Array<{ name: string; ms: number; note?: string }>;
}

interface BuildContext {
  pkg?: KernelPackage;
  key?: string;
  busyboxSha?: string;
  agentSha?: string;
  debPath?: string;
  work?: string;
  modulesDir?: string;
  release?: string;
  modules?: ResolvedModule[];
  groups?: ModuleGroups;
  out?: string;
  hit?: BuiltImage;
}

/**
 * Builds (or finds in the cache) the guest image: the Debian cloud kernel's
 * ELF vmlinux and a deterministic initramfs with busybox, the virtio/vsock
 * modules in dependency order, the agent and /init. The cache key covers
 * every input, so a second run with unchanged inputs is a hit.
 * Throws ImageBuildFailedError / ProcessFailedError with the fix to apply.
 * Concurrent builds of the same image are safe (last rename wins, both valid).
 */
export async function buildImage(layout: DataLayout, options: ImageBuildOptions, progress?: BuildProgress): Promise<ImageBuildResult> {
  if (!(IMAGE_NAMES as readonly string[]).includes(options.name)) {
    throw new ImageBuildFailedError(`unknown image "${options.name}"; known images: ${IMAGE_NAMES.join(', ')}`);
  }
  const busyboxPath = options.busyboxPath ?? '/bin/busybox';
  const ctx: BuildContext = {};
  const steps: Array<{ name: string; run: () => Promise<string | void>; skipOnHit?: boolean }> = [
    {
      name: 'resolve kernel package',
      run: async () => {
        ctx.pkg = await resolveKernelPackage(options.kernelPackage);
        return `${ctx.pkg.name} ${ctx.pkg.version}`;
      },
    },
    {
      name: 'check cache',
      run: async () => {
        if (!existsSync(busyboxPath)) {
          throw new ImageBuildFailedError(`${busyboxPath} not found; install it with \`apt-get install busybox-static\``);
        }
        ctx.busyboxSha = await sha256File(busyboxPath);
        ctx.agentSha = agentSourceDigest();
        ctx.key = cacheKey(ctx.pkg!, ctx.busyboxSha, ctx.agentSha);
        const existing = readImageDir(join(layout.images, imageDirName(options.name, ctx.key)));
        if (existing && !options.force) {
          ctx.hit = existing;
          return `hit ${imageDirName(options.name, ctx.key)}`;
        }
        return 'miss';
      },
    },
    {
      name: 'download kernel package',
      skipOnHit: true,
      run: async () => {
        ctx.debPath = await downloadKernelPackage(ctx.pkg!, layout.debCache);
        return `${(statSync(ctx.debPath).size / 1048576).toFixed(1)} MiB`;
      },
    },
    {
      name: 'extract kernel package',
      skipOnHit: true,
      run: async () => {
        mkdirSync(layout.tmp, { recursive: true });
        ctx.work = mkdtempSync(join(layout.tmp, 'image-'));
        await extractDeb(ctx.debPath!, join(ctx.work, 'deb'));
        const releases = readdirSync(join(ctx.work, 'deb/lib/modules'));
        if (releases.length !== 1) throw new ImageBuildFailedError(`expected one kernel release in ${ctx.debPath}, found: ${releases.join(', ') || 'none'}`);
        ctx.release = releases[0];
        ctx.modulesDir = join(ctx.work, 'deb/lib/modules', ctx.release);
        ctx.out = join(ctx.work, 'out');
        mkdirSync(ctx.out);
        return ctx.release;
      },
    },
    {
      name: 'extract vmlinux',
      skipOnHit: true,
      run: async () => extractVmlinux(join(ctx.work!, 'deb/boot', `vmlinuz-${ctx.release}`), join(ctx.out!, 'vmlinux'), ctx.work!),
    },
    {
      name: 'resolve kernel modules',
      skipOnHit: true,
      run: async () => {
        ctx.modules = resolveModules(ctx.modulesDir!, GUEST_MODULES);
        ctx.groups = {
          serial: resolveModules(ctx.modulesDir!, ['virtio_mmio', 'virtio_console']),
          vsock: resolveModules(ctx.modulesDir!, ['virtio_mmio', 'vmw_vsock_virtio_transport']),
          net: resolveModules(ctx.modulesDir!, ['virtio_mmio', 'virtio_net']),
          all: ctx.modules,
        };
        return `${ctx.modules.length} modules`;
      },
    },
    {
      name: 'build guest agent',
      skipOnHit: true,
      run: async () => {
        await buildAgent(join(ctx.work!, 'tfc-agent'));
        return `${(statSync(join(ctx.work!, 'tfc-agent')).size / 1024).toFixed(0)} KiB static`;
      },
    },
    {
      name: 'assemble initramfs',
      skipOnHit: true,
      run: async () => {
        const root = join(ctx.work!, 'root');
        await assembleRoot(root, {
          busyboxPath,
          agentPath: join(ctx.work!, 'tfc-agent'),
          initScript: renderInitScript(ctx.groups!),
          modules: ctx.modules!,
        });
        await packCpio(root, join(ctx.out!, 'initrd.cpio'));
        return `${(statSync(join(ctx.out!, 'initrd.cpio')).size / 1048576).toFixed(1)} MiB`;
      },
    },
    {
      name: 'write manifest',
      skipOnHit: true,
      run: async () => {
        const manifest = await writeManifest(ctx, options.name);
        const dest = join(layout.images, imageDirName(options.name, ctx.key!));
        rmSync(dest, { recursive: true, force: true });
        mkdirSync(layout.images, { recursive: true });
        renameSync(ctx.out!, dest);
        return manifest.digest.slice(0, 16);
      },
    },
  ];

  const done: ImageBuildResult['steps'] = [];
  try {
    const active = () => steps.filter((s) => !(ctx.hit && s.skipOnHit));
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i];
      if (ctx.hit && step.skipOnHit) continue;
      const total = ctx.hit ? active().length : steps.length;
      progress?.step(done.length + 1, total, step.name);
      const started = performance.now();
      const note = (await step.run()) ?? undefined;
      const ms = Math.round(performance.now() - started);
      done.push({ name: step.name, ms, ...(note ? { note } : {}) });
      progress?.stepDone(step.name, ms, note);
    }
  } finally {
    if (ctx.work) rmSync(ctx.work, { recursive: true, force: true });
  }
  const dirName = imageDirName(options.name, ctx.key!);
  writeImageRef(layout, options.name, dirName);
  const image = ctx.hit ?? readImageDir(join(layout.images, dirName));
  if (!image) throw new ImageBuildFailedError(`image ${dirName} was written but cannot be read back from ${layout.images}`);
  return { image, cacheHit: ctx.hit !== undefined, steps: done };
}

function cacheKey(pkg: KernelPackage, busyboxSha: string, agentSha: string): string {
  const fake = GUEST_MODULES.map((name) => ({ name, path: '' }));
  const initTemplate = renderInitScript({ serial: fake, vsock: fake, net: fake, all: fake });
  return createHash('sha256')
    .update(JSON.stringify({ builder: BUILDER_VERSION, pkg, busyboxSha, agentSha, initTemplate, modules: GUEST_MODULES }))
    .digest('hex');
}

async function writeManifest(ctx: BuildContext, name: string): Promise<ImageManifest> {
  const file = async (p: string) => ({ sha256: await sha256File(p), sizeBytes: statSync(p).size });
  const files = { vmlinux: await file(join(ctx.out!, 'vmlinux')), initrd: await file(join(ctx.out!, 'initrd.cpio')) };
  const manifest: ImageManifest = {
    schema: 1,
    name,
    key: ctx.key!,
    digest: createHash('sha256').update(files.vmlinux.sha256).update(files.initrd.sha256).digest('hex'),
    created_at: new Date().toISOString(),
    builder_version: BUILDER_VERSION,
    kernel: { package: ctx.pkg!.name, version: ctx.pkg!.version, release: ctx.release!, deb_sha256: ctx.pkg!.sha256 },
    busybox_sha256: ctx.busyboxSha!,
    agent_source_sha256: ctx.agentSha!,
    modules: ctx.modules!.map((m) => m.name),
    files,
  };
  writeFileSync(join(ctx.out!, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}
