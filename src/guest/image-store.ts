import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageNotFoundError } from '../errors/index.js';
import type { ImageKind } from '../config/index.js';
import type { DataLayout } from '../store/layout.js';

export interface ImageFile {
  sha256: string;
  sizeBytes: number;
}

/** What a Debian image's root filesystem holds (from its dpkg status file). */
export interface DebianContents {
  kind: 'debian';
  suite: string;
  variant: string;
  mirror: string;
  /** The packages asked for (config images.X.packages). */
  requested: string[];
  mmdebstrap_version: string;
  /** Every installed package with its version, sorted by name. */
  packages: Array<{ name: string; version: string; architecture: string }>;
}

/** What an OCI image's root filesystem came from (src/guest/rootfs/oci-import.ts, docs/images-oci.md). */
export interface OciContents {
  kind: 'oci';
  /** The source path given (layout directory or tar) and the manifest ref, "" = the only one. */
  source: string;
  ref: string;
  /** ociSourceDigest of the source: part of the cache key. */
  source_digest: string;
  format: 'oci-layout' | 'docker-archive';
  manifest_digest: string;
  layers: Array<{ digest: string; mediaType: string; sizeBytes: number }>;
  config: { env: string[]; entrypoint: string[] | null; cmd: string[] | null; workingDir: string; user: string };
  stats: { files: number; dirs: number; symlinks: number; hardlinks: number; whiteouts: number; skipped: Array<{ path: string; reason: string }> };
}

export type RootfsContents = DebianContents | OciContents;

/** The ext4 root filesystem of an image (kinds other than "minimal"). */
export interface RootfsInfo {
  /** SHA256 of the rootfs inputs: its own cache key (a kernel or agent change does not rebuild it). */
  key: string;
  /** Filesystem UUID (derived from the key) and label. */
  uuid: string;
  label: string;
  /** Bytes of file content (as mke2fs packs it: 4 KiB blocks) and the free space asked for. */
  content_bytes: number;
  extra_mib: number;
  inodes: number;
}

/**
 * manifest.json of one built image. Field names are the on-disk (and CLI
 * --json) format. Schema 1 (the minimal image before rootfs kinds) has no
 * `kind`, `rootfs` or `contents`; readImageDir fills `kind: "minimal"`.
 */
export interface ImageManifest {
  schema: 1 | 2;
  name: string;
  /** How the image was made; absent in schema 1 manifests (= "minimal"). */
  kind?: ImageKind;
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
  files: { vmlinux: ImageFile; initrd: ImageFile; rootfs?: ImageFile };
  rootfs?: RootfsInfo;
  contents?: RootfsContents;
}

export interface BuiltImage {
  manifest: ImageManifest;
  dir: string;
  kernelPath: string;
  initrdPath: string;
  /** The ext4 root filesystem (attach read-only), set when the image has one (kinds "debian", "oci"). */
  rootfsPath?: string;
}

/** File name of an image's root filesystem inside its directory. */
export const ROOTFS_FILE = 'rootfs.ext4';

/** The image's kind; schema 1 manifests predate kinds and are "minimal". */
export function manifestKind(manifest: ImageManifest): ImageKind {
  return manifest.kind ?? 'minimal';
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
  if (manifest === null || typeof manifest !== 'object' || (manifest.schema !== 1 && manifest.schema !== 2)) return null;
  manifest.kind = manifestKind(manifest);
  const image: BuiltImage = { manifest, dir, kernelPath: join(dir, 'vmlinux'), initrdPath: join(dir, 'initrd.cpio') };
  const wanted: Array<[string, ImageFile | undefined]> = [
    [image.kernelPath, manifest.files?.vmlinux],
    [image.initrdPath, manifest.files?.initrd],
  ];
  if (manifest.kind !== 'minimal') {
    image.rootfsPath = join(dir, ROOTFS_FILE);
    wanted.push([image.rootfsPath, manifest.files?.rootfs]);
  }
  for (const [path, file] of wanted) {
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
    // Names of images made with --from-oci are not in the config: say both ways.
    throw new ImageNotFoundError(
      `image "${name}" is not built in ${layout.images}; run \`tfc image build ${name}\` (an image of the config, e.g. minimal, python, node) or \`tfc image build --from-oci PATH --name ${name}\``,
      { details: { image: name } },
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
