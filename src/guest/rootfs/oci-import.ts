/**
 * OCI image import: turns a user's container image (an OCI image layout
 * directory or tar, or a `docker save` archive) into a root filesystem
 * directory, applying the layers in order with OCI whiteout semantics. The
 * image builder packs that directory into ext4; this module does not know
 * about ext4, the agent or the guest.
 *
 * The image is hostile input: no entry is written outside the destination
 * (absolute paths and `..` are refused, symlinks are never followed, see
 * safe-path.ts), every blob is checked against its digest, and the total
 * unpacked size and entry count are bounded. See docs/images-oci.md.
 */

import { createHash } from 'node:crypto';
import { lutimes, mkdir, readdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ImageBuildFailedError } from '../../errors/index.js';
import { ExtractState, type ExtractLimits, type ImportStats } from './layer-writer.js';
import { writeEntry } from './layer-writer.js';
import { resolveImage, type OciImageConfig } from './oci-manifest.js';
import { openImageSource } from './oci-source.js';
import { lstatOrNull, under } from './safe-path.js';
import { walkLayer } from './tar-layer.js';

export type { OciImageConfig } from './oci-manifest.js';

export interface OciImportOptions {
  /** Image reference inside a multi-image layout/tarball, e.g. "myapp:latest"; default: the only image (error if several and none named). */
  ref?: string;
  /** Largest total uncompressed size of all layers; default 8 GiB. */
  maxUnpackedBytes?: number;
  /** Called after each layer with progress (for the CLI progress bar); `index` counts from 0, `sizeBytes` is the blob's size. */
  onLayer?: (info: { index: number; total: number; digest: string; sizeBytes: number }) => void;
}

export interface OciImportResult {
  /** "oci-layout" | "docker-archive" */
  format: 'oci-layout' | 'docker-archive';
  /** sha256 digest of the image manifest (content address of the input). */
  manifestDigest: string;
  layers: Array<{ digest: string; mediaType: string; sizeBytes: number }>;
  config: OciImageConfig;
  /** Counts for the manifest: files, dirs, symlinks, whiteouts applied, entries skipped (with reasons). */
  stats: ImportStats;
}

/** Default maxUnpackedBytes: 8 GiB. */
export const DEFAULT_MAX_UNPACKED_BYTES = 8 * 1024 ** 3;
/** Most entries (over all layers) an image may hold. */
export const DEFAULT_MAX_ENTRIES = 1_000_000;
/** Tar headers and padding allowed per entry on top of maxUnpackedBytes when bounding decompression. */
const TAR_OVERHEAD_PER_ENTRY_BYTES = 1536;

/** Creates destDir or checks it is an empty directory; true when it was created. */
async function prepareDest(destDir: string): Promise<boolean> {
  const st = lstatOrNull(destDir);
  if (st === null) {
    await mkdir(destDir, { recursive: true, mode: 0o755 });
    return true;
  }
  if (!st.isDirectory()) throw new ImageBuildFailedError(`${destDir} exists and is not a directory; pass a new or empty directory`);
  if ((await readdir(destDir)).length > 0) throw new ImageBuildFailedError(`${destDir} is not empty; pass a new or empty directory`);
  return false;
}

/** Sets directory mtimes recorded during extraction, deepest first, without following symlinks. */
async function restoreDirTimes(state: ExtractState): Promise<void> {
  const rels = [...state.dirTimes.keys()].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const rel of rels) {
    const abs = under(state.root, rel.split('/'));
    const st = lstatOrNull(abs);
    const when = state.dirTimes.get(rel)!;
    if (st?.isDirectory()) await lutimes(abs, when, when);
  }
}

/**
 * Same as importOciImage with explicit limits (tests use small ones).
 * Preconditions: `destDir` does not exist or is an empty directory. On
 * failure what was unpacked is removed (and `destDir` too when this call
 * created it) and the error thrown.
 */
export async function importOciImageWithLimits(source: string, destDir: string, options: OciImportOptions, limits: ExtractLimits): Promise<OciImportResult> {
  const src = await openImageSource(source);
  const image = await resolveImage(src, options.ref);
  const root = resolve(destDir);
  const created = await prepareDest(root);
  const state = new ExtractState(root, limits);
  const maxTarBytes = limits.maxUnpackedBytes + limits.maxEntries * TAR_OVERHEAD_PER_ENTRY_BYTES;
  const onIgnored = (path: string, reason: string): void => state.skip(path, reason);
  try {
    for (const [index, layer] of image.layers.entries()) {
      // One pass: whiteouts keep what this layer already wrote (oci-whiteouts.ts). The
      // digests are checked at the end of the layer; on a mismatch everything is removed.
      state.startLayer();
      await walkLayer(src, layer, { maxTarBytes, checkDiffId: true, onIgnored, onEntry: (entry) => writeEntry(state, entry) });
      options.onLayer?.({ index, total: image.layers.length, digest: layer.digest, sizeBytes: layer.sizeBytes });
    }
    await restoreDirTimes(state);
  } catch (err) {
    // Leave nothing half-unpacked: remove what we created, or empty what we were given.
    if (created) await rm(root, { recursive: true, force: true });
    else for (const child of await readdir(root)) await rm(under(root, [child]), { recursive: true, force: true });
    throw err;
  }
  return {
    format: src.format,
    manifestDigest: image.manifestDigest,
    layers: image.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, sizeBytes: l.sizeBytes })),
    config: image.config,
    stats: state.stats,
  };
}

/**
 * Detects the format of `source` (a directory holding an OCI layout:
 * oci-layout + index.json + blobs/; or a .tar file that is an OCI layout
 * archive or a `docker save` archive with manifest.json) and unpacks its
 * layers in order into `destDir` (created, must not exist or be empty).
 * Throws ImageBuildFailedError naming what is wrong and how to fix it; on
 * failure nothing unpacked is left behind. Safe to call again with a fresh destDir.
 */
export function importOciImage(source: string, destDir: string, options: OciImportOptions = {}): Promise<OciImportResult> {
  return importOciImageWithLimits(source, destDir, options, {
    maxUnpackedBytes: options.maxUnpackedBytes ?? DEFAULT_MAX_UNPACKED_BYTES,
    maxEntries: DEFAULT_MAX_ENTRIES,
  });
}

/**
 * Cheap content address of the input without unpacking (manifest digest +
 * config digest), for the builder's cache key: "sha256:<hex>". Reads only
 * the index, manifests and config (all digest-checked); layer contents are
 * named by the manifest (OCI) or the config's diff_ids (docker save), and
 * importOciImage refuses layers that do not match them.
 */
export async function ociSourceDigest(source: string, options: Pick<OciImportOptions, 'ref'> = {}): Promise<string> {
  const image = await resolveImage(await openImageSource(source), options.ref);
  return `sha256:${createHash('sha256').update(`${image.manifestDigest}\n${image.configDigest}\n`).digest('hex')}`;
}
