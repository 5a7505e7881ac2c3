import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageNotFoundError } from '../errors/index.js';
import type { DataLayout } from '../store/layout.js';

export interface ImageFile {
  sha256: string;
  sizeBytes: number;
}

/** manifest.json of one built image. Field names are the on-disk (and CLI --json) format. */
export interface ImageManifest {
  schema: 1;
  name: string;
  /** SHA256 of the build inputs: the cache key. */
  key: string;
  /** SHA256 over the output files' digests: identifies the image's content (snapshots are keyed by it). */
  digest: string;
  created_at: string;
  builder_version: string;
  kernel: { package: string; version: string; release: string; deb_sha256: string };
  busybox_sha256: string;
  agent_source_sha256: string;
  modules: string[];
  files: { vmlinux: ImageFile; initrd: ImageFile };
}

export interface BuiltImage {
  manifest: ImageManifest;
  dir: string;
  kernelPath: string;
  initrdPath: string;
}

export function imageDirName(name: string, key: string): string {
  return `${name}-${key.slice(0, 16)}`;
}

/** Reads a built image from its directory; null when absent or incomplete (then it is rebuilt). */
export function readImageDir(dir: string): BuiltImage | null {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) return null;
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as ImageManifest;
  } catch {
    return null;
  }
  const image = { manifest, dir, kernelPath: join(dir, 'vmlinux'), initrdPath: join(dir, 'initrd.cpio') };
  for (const [path, file] of [
    [image.kernelPath, manifest.files?.vmlinux],
    [image.initrdPath, manifest.files?.initrd],
  ] as const) {
    if (!file || !existsSync(path) || statSync(path).size !== file.sizeBytes) return null;
  }
  return image;
}

/** The image a name currently points at. Throws ImageNotFoundError with the build command when none. */
export function resolveImage(layout: DataLayout, name: string): BuiltImage {
  const refPath = join(layout.imageRefs, name);
  const dir = existsSync(refPath) ? join(layout.images, readFileSync(refPath, 'utf8').trim()) : null;
  const image = dir ? readImageDir(dir) : null;
  if (!image) {
    throw new ImageNotFoundError(
      `image "${name}" is not built in ${layout.images}; run \`tfc image build --profile <profile using it>\` (e.g. \`tfc image build\`)`,
      {
        details: { image: name },
      },
    );
  }
  return image;
}

/** Points `name` at the image directory `dirName` (atomic rename). */
export function writeImageRef(layout: DataLayout, name: string, dirName: string): void {
  mkdirSync(layout.imageRefs, { recursive: true });
  const tmp = join(layout.imageRefs, `.${name}.tmp`);
  writeFileSync(tmp, dirName + '\n');
  renameSync(tmp, join(layout.imageRefs, name));
}

export interface ImageListing extends BuiltImage {
  /** True when a ref (image name) points at this build. */
  current: boolean;
}

/** Every complete image in the cache, newest first. */
export function listImages(layout: DataLayout): ImageListing[] {
  if (!existsSync(layout.images)) return [];
  const refs = new Set(
    existsSync(layout.imageRefs)
      ? readdirSync(layout.imageRefs)
          .filter((f) => !f.startsWith('.'))
          .map((f) => readFileSync(join(layout.imageRefs, f), 'utf8').trim())
      : [],
  );
  return readdirSync(layout.images)
    .filter((d) => d !== 'refs' && !d.startsWith('.'))
    .map((d) => readImageDir(join(layout.images, d)))
    .filter((i): i is BuiltImage => i !== null)
    .map((i) => ({ ...i, current: refs.has(imageDirName(i.manifest.name, i.manifest.key)) }))
    .sort((a, b) => b.manifest.created_at.localeCompare(a.manifest.created_at));
}
