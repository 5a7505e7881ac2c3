/**
 * Builds guest images as one list of named, timed steps. Every image has
 * the shared boot files (boot-files.ts: kernel + stage-1 initramfs with the
 * agent); `debian` and `oci` images add a root filesystem (rootfs/*.ts)
 * packed into ext4, which the guest mounts read-only under an overlay.
 * Three content-addressed caches: boot files (key = kernel, busybox, agent,
 * init), rootfs (key = the kind's inputs), and the image (both keys), so a
 * second build is a hit and an agent change does not rebuild the rootfs.
 * See docs/images.md.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, constants, linkSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IMAGE_NAME_PATTERN, type ImageDefinition } from '../config/index.js';
import { ImageBuildFailedError } from '../errors/index.js';
import type { DataLayout } from '../store/layout.js';
import {
  BUILDER_VERSION,
  bootBuildSteps,
  checkBootCache,
  moveIntoPlace,
  resolveKernelStep,
  storeBootFiles,
  workDir,
  type BootContext,
  type BootOptions,
  type BuildStep,
} from './boot-files.js';
import { imageDirName, readImageDir, ROOTFS_FILE, writeImageRef, type BuiltImage, type ImageManifest } from './image-store.js';
import { resolveRootfsStep, rootfsBuildSteps, type RootfsContext } from './rootfs/rootfs-build.js';
import type { RootfsDefinition } from './rootfs/image-kinds.js';

export { BUILDER_VERSION } from './boot-files.js';

export interface ImageBuildOptions {
  /** Image name (profiles reference it); must match IMAGE_NAME_PATTERN. */
  name: string;
  /** Config images.kernel_package. */
  kernelPackage: string;
  /**
   * What to build (config images.definitions[name], or an oci definition
   * from `--from-oci`). Default: the built-in minimal image, which only the
   * name "minimal" may omit.
   */
  definition?: ImageDefinition;
  /** Static busybox (Debian busybox-static). Default /bin/busybox. */
  busyboxPath?: string;
  /** Rebuild even when the caches have the image (boot files and rootfs). Default false. */
  force?: boolean;
}

/** Receives progress; the CLI renders it, tests may ignore it. */
export interface BuildProgress {
  step(index: number, total: number, name: string): void;
  stepDone(name: string, ms: number, note?: string): void;
  /** A sub-step of the running step, e.g. "layer 2/3 sha256:ab12... 12.0 MiB". Optional. */
  detail?(text: string): void;
}

export interface ImageBuildResult {
  image: BuiltImage;
  cacheHit: boolean;
  steps: Array<{ name: string; ms: number; note?: string }>;
}

interface BuildContext extends BootContext, RootfsContext {
  imageKey?: string;
  hit?: BuiltImage;
}

/**
 * Builds (or finds in the cache) image `options.name` and points the name
 * at it. Throws ImageBuildFailedError / ProcessFailedError with the fix to
 * apply (a missing tool names its package). Concurrent builds of the same
 * image are safe: each works in its own scratch directory and renames the
 * finished result into place; a result already there is kept (same inputs,
 * same content) unless `force`.
 */
export async function buildImage(layout: DataLayout, options: ImageBuildOptions, progress?: BuildProgress): Promise<ImageBuildResult> {
  const definition = checkDefinition(options);
  const boot: BootOptions = { kernelPackage: options.kernelPackage, busyboxPath: options.busyboxPath ?? '/bin/busybox', force: options.force ?? false };
  const ctx: BuildContext = {};
  const imageHit = () => ctx.hit !== undefined;
  const steps: BuildStep[] = [resolveKernelStep(boot, ctx)];

  if (definition.kind === 'minimal') {
    steps.push(
      {
        name: 'check cache',
        run: async () => {
          await checkBootCache(layout, boot, ctx);
          ctx.hit = ctx.boot;
          ctx.imageKey = ctx.bootKey;
          return ctx.hit ? `hit ${imageDirName('minimal', ctx.bootKey!)}` : 'miss';
        },
      },
      ...bootBuildSteps(layout, boot, ctx, imageHit),
      {
        name: 'write manifest',
        skip: imageHit,
        run: async () => (await storeBootFiles(layout, ctx, boot.force)).digest.slice(0, 16),
      },
    );
  } else {
    const bootHit = () => ctx.hit !== undefined || ctx.boot !== undefined;
    steps.push(
      resolveRootfsStep(layout, definition, boot.force, ctx),
      {
        name: 'check cache',
        run: async () => {
          await checkBootCache(layout, boot, ctx);
          ctx.imageKey = imageKey(definition, ctx.bootKey!, ctx.rootfsKey!);
          const existing = boot.force ? null : readImageDir(join(layout.images, imageDirName(options.name, ctx.imageKey)));
          if (existing) ctx.hit = existing;
          if (existing) return `hit ${imageDirName(options.name, ctx.imageKey)}`;
          return `miss (kernel and initramfs ${ctx.boot ? 'cached' : 'to build'}, rootfs ${ctx.rootfs ? 'cached' : 'to build'})`;
        },
      },
      ...bootBuildSteps(layout, boot, ctx, bootHit),
      {
        name: 'store kernel and initramfs',
        skip: bootHit,
        run: async () => (await storeBootFiles(layout, ctx, boot.force)).digest.slice(0, 16),
      },
      ...rootfsBuildSteps(
        layout,
        definition,
        boot.force,
        ctx,
        () => workDir(layout, ctx),
        (text) => progress?.detail?.(text),
      ).map((s) => ({
        ...s,
        skip: () => imageHit() || s.skip!(),
      })),
      {
        name: 'write manifest',
        skip: imageHit,
        run: async () => (await writeRootfsImage(layout, options.name, definition, ctx, boot.force)).digest.slice(0, 16),
      },
    );
  }

  const done: ImageBuildResult['steps'] = [];
  try {
    for (const step of steps) {
      if (step.skip?.()) continue;
      const total = done.length + steps.slice(steps.indexOf(step)).filter((s) => !s.skip?.()).length;
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
  const dirName = imageDirName(options.name, ctx.imageKey!);
  writeImageRef(layout, options.name, dirName);
  const image = ctx.hit ?? readImageDir(join(layout.images, dirName));
  if (!image) throw new ImageBuildFailedError(`image ${dirName} was written but cannot be read back from ${layout.images}`);
  return { image, cacheHit: ctx.hit !== undefined, steps: done };
}

function checkDefinition(options: ImageBuildOptions): ImageDefinition {
  if (!IMAGE_NAME_PATTERN.test(options.name)) {
    throw new ImageBuildFailedError(`invalid image name ${JSON.stringify(options.name)}: must match ${IMAGE_NAME_PATTERN.source}`);
  }
  const definition = options.definition ?? (options.name === 'minimal' ? { name: 'minimal', kind: 'minimal' } : undefined);
  if (!definition) {
    throw new ImageBuildFailedError(
      `unknown image "${options.name}": define [images.${options.name}] in tfc.toml (kind = "debian" or "oci"), or build it with \`tfc image build --from-oci PATH --name ${options.name}\``,
    );
  }
  if (definition.kind === 'minimal' && options.name !== 'minimal') {
    throw new ImageBuildFailedError(`image "${options.name}" cannot have kind "minimal": that is only the built-in image "minimal"`);
  }
  return definition;
}

/** The image's key: its boot files' and its rootfs's keys (the name is not part of it). */
export function imageKey(definition: RootfsDefinition, bootKey: string, rootfsKey: string): string {
  return createHash('sha256')
    .update(JSON.stringify({ builder: BUILDER_VERSION, kind: definition.kind, bootKey, rootfsKey }))
    .digest('hex');
}

/** Hard link (same file system, no copy), else a copy (reflink where the file system can). */
function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to, constants.COPYFILE_FICLONE);
  }
}

async function writeRootfsImage(layout: DataLayout, name: string, definition: RootfsDefinition, ctx: BuildContext, force: boolean): Promise<ImageManifest> {
  const boot = ctx.boot!.manifest;
  const rootfs = ctx.rootfs!;
  const out = join(workDir(layout, ctx), 'image-out');
  mkdirSync(out);
  linkOrCopy(ctx.boot!.kernelPath, join(out, 'vmlinux'));
  linkOrCopy(ctx.boot!.initrdPath, join(out, 'initrd.cpio'));
  linkOrCopy(rootfs.path, join(out, ROOTFS_FILE));
  const files = { vmlinux: boot.files.vmlinux, initrd: boot.files.initrd, rootfs: rootfs.file };
  const manifest: ImageManifest = {
    schema: 2,
    name,
    kind: definition.kind,
    key: ctx.imageKey!,
    digest: createHash('sha256').update(files.vmlinux.sha256).update(files.initrd.sha256).update(files.rootfs.sha256).digest('hex'),
    created_at: new Date().toISOString(),
    builder_version: BUILDER_VERSION,
    kernel: boot.kernel,
    busybox_sha256: boot.busybox_sha256,
    agent_source_sha256: boot.agent_source_sha256,
    modules: boot.modules,
    files,
    rootfs: rootfs.info,
    contents: rootfs.contents,
  };
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  moveIntoPlace(out, join(layout.images, imageDirName(name, ctx.imageKey!)), force);
  return manifest;
}
