/**
 * Builds (or finds) an image's root filesystem: the kind fills a directory,
 * then it becomes rootfs.ext4 in a cache of its own, keyed by the rootfs
 * inputs only (images/.rootfs/KIND-KEY/). The image directory links to it,
 * so a kernel or agent change does not rebuild the ext4. Nothing here
 * knows about the kernel or the agent.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageBuildFailedError } from '../../errors/index.js';
import type { DataLayout } from '../../store/layout.js';
import { moveIntoPlace, type BuildStep } from '../boot-files.js';
import { ROOTFS_FILE, type ImageFile, type RootfsContents, type RootfsInfo } from '../image-store.js';
import { sha256File } from '../kernel-package.js';
import { ensureMountPoints, ext4Layout, measureTree, packExt4, ROOTFS_LABEL, uuidFromKey } from './ext4.js';
import { rootfsKind, ROOTFS_BUILDER_VERSION, type RootfsDefinition } from './image-kinds.js';

/** rootfs.json beside a cached rootfs.ext4. */
export interface CachedRootfs {
  schema: 1;
  key: string;
  inputs: Record<string, unknown>;
  info: RootfsInfo;
  file: ImageFile;
  contents: RootfsContents;
}

export interface RootfsContext {
  rootfsKey?: string;
  rootfsInputs?: Record<string, unknown>;
  /** The cached rootfs (hit, or just stored). */
  rootfs?: CachedRootfs & { path: string };
  /** Directory the kind fills. */
  tree?: string;
  contents?: RootfsContents;
}

/** Directory of the rootfs cache (hidden from `tfc image ls`). */
export function rootfsCacheDir(layout: DataLayout): string {
  return join(layout.images, '.rootfs');
}

export function rootfsCacheKey(def: RootfsDefinition, inputs: Record<string, unknown>): string {
  return createHash('sha256')
    .update(JSON.stringify({ builder: ROOTFS_BUILDER_VERSION, inputs, extraMib: def.extraMib }))
    .digest('hex');
}

function cachedDir(layout: DataLayout, def: RootfsDefinition, key: string): string {
  return join(rootfsCacheDir(layout), `${def.kind}-${key.slice(0, 16)}`);
}

/** A complete cached rootfs (rootfs.json readable, ext4 of the recorded size), else null. */
export function readCachedRootfs(dir: string): (CachedRootfs & { path: string }) | null {
  try {
    const meta = JSON.parse(readFileSync(join(dir, 'rootfs.json'), 'utf8')) as CachedRootfs;
    const path = join(dir, ROOTFS_FILE);
    if (meta.schema !== 1 || !existsSync(path) || statSync(path).size !== meta.file?.sizeBytes) return null;
    return { ...meta, path };
  } catch {
    return null;
  }
}

/** "resolve rootfs inputs": the rootfs key, and the cached rootfs when there is one (unless forced). */
export function resolveRootfsStep(layout: DataLayout, def: RootfsDefinition, force: boolean, ctx: RootfsContext): BuildStep {
  const kind = rootfsKind(def);
  return {
    name: 'resolve rootfs inputs',
    run: async () => {
      ctx.rootfsInputs = await kind.keyInputs(def);
      ctx.rootfsKey = rootfsCacheKey(def, ctx.rootfsInputs);
      const hit = force ? null : readCachedRootfs(cachedDir(layout, def, ctx.rootfsKey));
      if (hit) ctx.rootfs = hit;
      return `${kind.describe(def, ctx.rootfsInputs)}; rootfs ${hit ? 'cached' : 'to build'} ${ctx.rootfsKey.slice(0, 16)}`;
    },
  };
}

/**
 * The kind's populate step and "pack ext4", both skipped when the rootfs
 * is cached. `work()` gives the build's scratch directory; `detail` reports
 * sub-steps (OCI layers) to the progress display.
 */
export function rootfsBuildSteps(
  layout: DataLayout,
  def: RootfsDefinition,
  force: boolean,
  ctx: RootfsContext,
  work: () => string,
  detail: (text: string) => void,
): BuildStep[] {
  const kind = rootfsKind(def);
  const skip = () => ctx.rootfs !== undefined;
  return [
    {
      name: kind.stepName,
      skip,
      run: async () => {
        ctx.tree = join(work(), 'rootfs');
        ctx.contents = await kind.populate(def, ctx.tree, ctx.rootfsInputs!, { detail, debCacheDir: join(layout.debCache, 'mmdebstrap') });
        const size = measureTree(ctx.tree);
        const packages = ctx.contents.kind === 'debian' ? `, ${ctx.contents.packages.length} packages` : '';
        return `${(size.bytes / 1048576).toFixed(1)} MiB, ${size.entries} entries${packages}`;
      },
    },
    {
      name: 'pack ext4',
      skip,
      run: async () => {
        ensureMountPoints(ctx.tree!);
        const tree = measureTree(ctx.tree!);
        const layoutExt4 = ext4Layout(tree, def.extraMib);
        const uuid = uuidFromKey(ctx.rootfsKey!);
        const out = join(work(), 'rootfs-out');
        mkdirSync(out);
        const file = join(out, ROOTFS_FILE);
        await packExt4({ dir: ctx.tree!, file, layout: layoutExt4, uuid });
        const meta: CachedRootfs = {
          schema: 1,
          key: ctx.rootfsKey!,
          inputs: ctx.rootfsInputs!,
          info: { key: ctx.rootfsKey!, uuid, label: ROOTFS_LABEL, content_bytes: tree.bytes, extra_mib: def.extraMib, inodes: layoutExt4.inodes },
          file: { sha256: await sha256File(file), sizeBytes: statSync(file).size },
          contents: ctx.contents!,
        };
        writeFileSync(join(out, 'rootfs.json'), JSON.stringify(meta, null, 2) + '\n');
        const dest = cachedDir(layout, def, ctx.rootfsKey!);
        moveIntoPlace(out, dest, force);
        const stored = readCachedRootfs(dest);
        if (!stored) throw new ImageBuildFailedError(`root filesystem ${dest} was written but cannot be read back`);
        ctx.rootfs = stored;
        const used = statSync(join(dest, ROOTFS_FILE)).blocks * 512;
        return `${(stored.file.sizeBytes / 1048576).toFixed(0)} MiB (${(tree.bytes / 1048576).toFixed(1)} MiB content + ${def.extraMib} MiB free; ${(used / 1048576).toFixed(1)} MiB on disk)`;
      },
    },
  ];
}
