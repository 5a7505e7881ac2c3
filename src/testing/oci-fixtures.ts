/**
 * Test support: builds container images on disk (OCI layouts, OCI layout
 * tars, `docker save` archives) from entry lists, including hostile entries
 * no real tool would write (absolute paths, `..`, symlink escapes). Tar
 * headers are encoded by node-tar's `Header`/`Pax`; nothing is downloaded.
 */

import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create, Header, Pax } from 'tar';

export interface FixtureEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'FIFO';
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkpath?: string;
  mtime?: Date;
}

const MTIME = new Date('2024-01-02T03:04:05Z');

/** An uncompressed tar holding `entries` exactly as given (no normalisation). */
export function tarBuffer(entries: FixtureEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'File';
    const data = type === 'File' ? Buffer.from(e.data ?? '') : Buffer.alloc(0);
    const fields = {
      path: e.path,
      mode: e.mode ?? (type === 'Directory' ? 0o755 : type === 'SymbolicLink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      size: data.length,
      mtime: e.mtime ?? MTIME,
      type,
      linkpath: e.linkpath ?? '',
      uname: '',
      gname: '',
    };
    const header = new Header(fields);
    const block = Buffer.alloc(512);
    if (header.encode(block, 0)) {
      blocks.push(new Pax({ ...fields, mtime: undefined }).encode());
      header.encode(block, 0);
    }
    blocks.push(block, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export function sha256(buf: Buffer | string): string {
  return `sha256:${createHash('sha256').update(buf).digest('hex')}`;
}

export interface FixtureImage {
  /** Names: OCI ref annotation / docker RepoTags. */
  refs?: string[];
  /** Uncompressed layer tars, lowest first. */
  layers: Buffer[];
  /** gzip the layer blobs (OCI only). Default true. */
  gzip?: boolean;
  /** Overrides of the config document. */
  config?: Record<string, unknown>;
  /** Overrides the layers' media type (OCI only). */
  layerMediaType?: string;
}

function configDoc(img: FixtureImage): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/bin:/bin', 'APP=1'], Entrypoint: ['/bin/app'], Cmd: ['--serve'], WorkingDir: '/srv', User: 'app' },
      rootfs: { type: 'layers', diff_ids: img.layers.map((l) => sha256(l)) },
      ...img.config,
    }),
  );
}

/** Stores `buf` as a blob of the layout in `dir`; returns its digest. */
export function putBlob(dir: string, buf: Buffer): string {
  const digest = sha256(buf);
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), buf);
  return digest;
}

/** Writes an OCI image layout into `dir`; returns each image's manifest digest. */
export function writeOciLayout(dir: string, images: FixtureImage[]): string[] {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const manifests = images.map((img) => {
    const gzip = img.gzip ?? true;
    const config = configDoc(img);
    const layers = img.layers.map((l) => {
      const blob = gzip ? gzipSync(l) : l;
      return {
        mediaType: img.layerMediaType ?? (gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar'),
        digest: putBlob(dir, blob),
        size: blob.length,
      };
    });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: putBlob(dir, config), size: config.length },
        layers,
      }),
    );
    return { digest: putBlob(dir, manifest), size: manifest.length, refs: img.refs ?? [] };
  });
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: manifests.map((m) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: m.digest,
      size: m.size,
      ...(m.refs[0] ? { annotations: { 'org.opencontainers.image.ref.name': m.refs[0] } } : {}),
    })),
  };
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
  return manifests.map((m) => m.digest);
}

/** Packs an OCI layout directory into an uncompressed tar at `file`. */
export async function packLayout(dir: string, file: string): Promise<void> {
  await create({ file, cwd: dir, portable: true }, ['oci-layout', 'index.json', 'blobs']);
}

/** Writes a legacy `docker save` archive (config `<hex>.json`, `<id>/layer.tar`, manifest.json) to `file`. */
export function writeDockerArchive(file: string, images: FixtureImage[]): void {
  const entries: FixtureEntry[] = [];
  const manifest = images.map((img) => {
    const config = configDoc(img);
    const configName = `${sha256(config).slice(7)}.json`;
    entries.push({ path: configName, data: config });
    const layerNames = img.layers.map((l, i) => {
      const id = createHash('sha256').update(`${configName}/${i}`).digest('hex');
      entries.push({ path: `${id}/`, type: 'Directory' }, { path: `${id}/layer.tar`, data: l });
      return `${id}/layer.tar`;
    });
    return { Config: configName, RepoTags: img.refs ?? [], Layers: layerNames };
  });
  entries.push({ path: 'manifest.json', data: JSON.stringify(manifest) });
  writeFileSync(file, tarBuffer(entries));
}
