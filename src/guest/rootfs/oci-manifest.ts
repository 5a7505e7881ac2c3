/**
 * Finds the image to unpack inside an image source: reads index.json (OCI)
 * or manifest.json (docker save), picks the image by reference, follows an
 * image index / manifest list to its linux/amd64 manifest, reads the config
 * and lists the layers. Every JSON document is hostile: sizes are bounded,
 * every blob read is checked against its digest, shapes are validated.
 * It does not read layer contents (tar-layer.ts does).
 */

import { createHash } from 'node:crypto';
import { ImageBuildFailedError } from '../../errors/index.js';
import type { ImageSource } from './oci-source.js';

export interface OciImageConfig {
  env: string[];
  entrypoint: string[] | null;
  cmd: string[] | null;
  workingDir: string;
  user: string;
}

/** One layer to apply, in order. */
export interface LayerRef {
  /** Content address: of the blob (OCI, docker >= 25) or of the uncompressed tar (legacy docker save: its diff_id). */
  digest: string;
  mediaType: string;
  sizeBytes: number;
  /** Member name inside the source. */
  member: string;
  /** What `digest` is computed over. */
  digestOf: 'blob' | 'uncompressed';
  /** The config's diff_id for this layer (sha256 of the uncompressed tar). */
  diffId: string;
}

export interface ResolvedImage {
  manifestDigest: string;
  configDigest: string;
  config: OciImageConfig;
  layers: LayerRef[];
}

const MAX_JSON_BYTES = 16 * 1024 * 1024;
const MAX_DESCRIPTORS = 10_000;
const MAX_LAYERS = 1_000;
const MAX_INDEX_DEPTH = 4;

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
const CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);
const TAR_LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);
/** Media type reported for `docker save`'s plain layer.tar members. */
export const DOCKER_SAVE_LAYER_TYPE = 'application/vnd.docker.image.rootfs.diff.tar';

const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

type Json = Record<string, unknown>;

function bad(source: ImageSource, what: string): Error {
  return new ImageBuildFailedError(`${source.location}: ${what}; the image is malformed (re-export it with \`docker save\` or \`skopeo copy\`)`);
}

function parseJson(source: ImageSource, name: string, buf: Buffer): Json {
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch {
    throw bad(source, `${name} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null) throw bad(source, `${name} is not a JSON object`);
  return value as Json;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function strArray(source: ImageSource, v: unknown, what: string): string[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(source, `${what} is not a list of strings`);
  return v as string[];
}

export function digestHex(digest: string): { algorithm: 'sha256' | 'sha512'; hex: string } {
  const [algorithm, hex] = digest.split(':') as ['sha256' | 'sha512', string];
  return { algorithm, hex };
}

export function blobMember(digest: string): string {
  const { algorithm, hex } = digestHex(digest);
  return `blobs/${algorithm}/${hex}`;
}

function checkDigest(source: ImageSource, v: unknown, what: string): string {
  if (typeof v !== 'string' || !DIGEST_RE.test(v)) throw bad(source, `${what} has an invalid digest ${JSON.stringify(v)}`);
  return v;
}

/** Reads a small blob by digest and checks its size and digest. */
async function readBlob(source: ImageSource, digest: string, expectedSize: unknown): Promise<Buffer> {
  const member = blobMember(digest);
  const buf = await source.read(member, MAX_JSON_BYTES);
  const { algorithm, hex } = digestHex(digest);
  if (createHash(algorithm).update(buf).digest('hex') !== hex) {
    throw new ImageBuildFailedError(`${source.location}: blob ${digest} is corrupted (its content does not match its digest); re-export the image`);
  }
  if (typeof expectedSize === 'number' && expectedSize !== buf.length) {
    throw bad(source, `blob ${digest} is ${buf.length} bytes but its descriptor says ${expectedSize}`);
  }
  return buf;
}

/** "docker.io/library/app:latest", "app" and "app:latest" name the same image. */
export function normalizeRef(ref: string): string {
  let r = ref.replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '');
  const lastSlash = r.lastIndexOf('/');
  if (!r.includes('@') && !r.slice(lastSlash + 1).includes(':')) r += ':latest';
  return r;
}

function refMatches(wanted: string, names: string[]): boolean {
  return names.some((n) => n === wanted || normalizeRef(n) === normalizeRef(wanted));
}

interface Candidate {
  names: string[];
  key: string;
}

/**
 * Picks one candidate by ref; lists the known refs when it cannot. When
 * several remain, those `preferred` (the right platform) are kept first.
 */
function pick<T extends Candidate>(source: ImageSource, candidates: T[], ref: string | undefined, preferred?: (c: T) => boolean): T {
  const label = (c: T): string => c.names[0] ?? c.key;
  const known = candidates.map(label).join(', ');
  let chosen = candidates;
  if (ref !== undefined) {
    chosen = candidates.filter((c) => refMatches(ref, c.names));
    if (chosen.length === 0) throw new ImageBuildFailedError(`${source.location} has no image named ${ref}; it holds: ${known || '(none)'}`);
  }
  let distinct = new Set(chosen.map((c) => c.key));
  if (distinct.size === 0) throw bad(source, 'the image list is empty');
  if (distinct.size > 1 && preferred && chosen.some(preferred)) {
    chosen = chosen.filter(preferred);
    distinct = new Set(chosen.map((c) => c.key));
  }
  if (distinct.size > 1) {
    throw new ImageBuildFailedError(
      `${source.location} holds several images (${chosen.map(label).join(', ')}); choose one with a ref, e.g. --ref ${label(chosen[0]!)}`,
    );
  }
  return chosen[0]!;
}

function parseConfig(source: ImageSource, raw: Json): { config: OciImageConfig; diffIds: string[] } {
  if (raw.os !== undefined && raw.os !== 'linux') {
    throw new ImageBuildFailedError(`${source.location}: the image is for os ${String(raw.os)}; build a linux/amd64 image`);
  }
  if (raw.architecture !== undefined && raw.architecture !== 'amd64') {
    throw new ImageBuildFailedError(
      `${source.location}: the image is for ${String(raw.architecture)}, the guest runs amd64; build it with \`docker build --platform linux/amd64\``,
    );
  }
  const c = (typeof raw.config === 'object' && raw.config !== null ? raw.config : {}) as Json;
  const rootfs = (typeof raw.rootfs === 'object' && raw.rootfs !== null ? raw.rootfs : {}) as Json;
  const diffIds = strArray(source, rootfs.diff_ids, 'config rootfs.diff_ids') ?? [];
  diffIds.forEach((d, i) => checkDigest(source, d, `config rootfs.diff_ids[${i}]`));
  return {
    config: {
      env: strArray(source, c.Env, 'config Env') ?? [],
      entrypoint: strArray(source, c.Entrypoint, 'config Entrypoint'),
      cmd: strArray(source, c.Cmd, 'config Cmd'),
      workingDir: str(c.WorkingDir) ?? '',
      user: str(c.User) ?? '',
    },
    diffIds,
  };
}

function descriptors(source: ImageSource, doc: Json, what: string): Json[] {
  const list = doc.manifests;
  if (!Array.isArray(list) || list.length > MAX_DESCRIPTORS || !list.every((d) => typeof d === 'object' && d !== null)) {
    throw bad(source, `${what} has no valid "manifests" list`);
  }
  return list as Json[];
}

function platformOf(d: Json): string {
  const p = (typeof d.platform === 'object' && d.platform !== null ? d.platform : {}) as Json;
  return `${str(p.os) ?? '?'}/${str(p.architecture) ?? '?'}`;
}

/** Follows index descriptors down to one image manifest for linux/amd64. */
async function manifestOf(source: ImageSource, desc: Json, depth: number): Promise<{ digest: string; doc: Json }> {
  const digest = checkDigest(source, desc.digest, 'a manifest descriptor');
  const doc = parseJson(source, digest, await readBlob(source, digest, desc.size));
  const mediaType = str(desc.mediaType) ?? str(doc.mediaType);
  const isIndex = mediaType ? INDEX_TYPES.has(mediaType) : Array.isArray(doc.manifests);
  if (!isIndex) {
    if (mediaType && !MANIFEST_TYPES.has(mediaType)) throw bad(source, `${digest} has unsupported media type ${mediaType}`);
    return { digest, doc };
  }
  if (depth >= MAX_INDEX_DEPTH) throw bad(source, 'image indexes are nested too deeply');
  const children = descriptors(source, doc, digest);
  const amd64 = children.filter((d) => platformOf(d) === 'linux/amd64');
  if (amd64.length === 0) {
    const have = [...new Set(children.map(platformOf))].join(', ');
    throw new ImageBuildFailedError(
      `${source.location}: the image has no linux/amd64 variant (it has: ${have}); build it with \`docker build --platform linux/amd64\``,
    );
  }
  return manifestOf(source, amd64[0]!, depth + 1);
}

async function resolveOci(source: ImageSource, ref: string | undefined): Promise<ResolvedImage> {
  const layoutDoc = parseJson(source, 'oci-layout', await source.read('oci-layout', 64 * 1024));
  if (typeof layoutDoc.imageLayoutVersion !== 'string' || !layoutDoc.imageLayoutVersion.startsWith('1.')) {
    throw bad(source, `unsupported oci-layout version ${JSON.stringify(layoutDoc.imageLayoutVersion)}`);
  }
  const index = parseJson(source, 'index.json', await source.read('index.json', MAX_JSON_BYTES));
  const candidates = descriptors(source, index, 'index.json').map((d) => {
    const a = (typeof d.annotations === 'object' && d.annotations !== null ? d.annotations : {}) as Json;
    const names = [str(a['io.containerd.image.name']), str(a['org.opencontainers.image.ref.name'])].filter((n): n is string => !!n);
    return { names, key: checkDigest(source, d.digest, 'an index.json entry'), desc: d };
  });
  // index.json may list one manifest per platform directly (e.g. `skopeo copy --all`).
  const top = pick(source, candidates, ref, (c) => ['linux/amd64', '?/?'].includes(platformOf(c.desc)));
  const { digest: manifestDigest, doc } = await manifestOf(source, top.desc, 0);
  const cdesc = (typeof doc.config === 'object' && doc.config !== null ? doc.config : {}) as Json;
  const cType = str(cdesc.mediaType);
  if (!cType || !CONFIG_TYPES.has(cType)) {
    throw new ImageBuildFailedError(`${source.location}: ${manifestDigest} is not a container image (config media type ${cType ?? 'missing'})`);
  }
  const configDigest = checkDigest(source, cdesc.digest, 'the config descriptor');
  const { config, diffIds } = parseConfig(source, parseJson(source, configDigest, await readBlob(source, configDigest, cdesc.size)));
  const rawLayers = doc.layers;
  if (!Array.isArray(rawLayers) || rawLayers.length > MAX_LAYERS) throw bad(source, `${manifestDigest} has no valid "layers" list`);
  if (rawLayers.length !== diffIds.length) {
    throw bad(source, `${manifestDigest} lists ${rawLayers.length} layers but its config has ${diffIds.length} diff_ids`);
  }
  const layers: LayerRef[] = rawLayers.map((l: unknown, i: number): LayerRef => {
    const d = (typeof l === 'object' && l !== null ? l : {}) as Json;
    const digest = checkDigest(source, d.digest, `layer ${i}`);
    const mediaType = str(d.mediaType) ?? '';
    if (mediaType.endsWith('+zstd')) {
      throw new ImageBuildFailedError(
        `${source.location}: layer ${digest} is zstd-compressed, which is not supported; re-export with gzip (\`skopeo copy --dest-compress-format gzip ...\`, buildx \`--output type=oci,compression=gzip\`)`,
      );
    }
    if (!TAR_LAYER_TYPES.has(mediaType))
      throw new ImageBuildFailedError(`${source.location}: layer ${digest} has unsupported media type ${mediaType || '(none)'}`);
    if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw bad(source, `layer ${digest} has no valid size`);
    return { digest, mediaType, sizeBytes: d.size, member: blobMember(digest), digestOf: 'blob', diffId: diffIds[i]! };
  });
  for (const l of layers) {
    const actual = await source.size(l.member);
    if (actual === undefined) throw new ImageBuildFailedError(`${source.location}: layer blob ${l.digest} is missing; the image is incomplete, re-export it`);
    if (actual !== l.sizeBytes) throw bad(source, `layer blob ${l.digest} is ${actual} bytes but the manifest says ${l.sizeBytes}`);
  }
  return { manifestDigest, configDigest, config, layers };
}

async function resolveDocker(source: ImageSource, ref: string | undefined): Promise<ResolvedImage> {
  const buf = await source.read('manifest.json', MAX_JSON_BYTES);
  let list: unknown;
  try {
    list = JSON.parse(buf.toString('utf8'));
  } catch {
    throw bad(source, 'manifest.json is not valid JSON');
  }
  if (!Array.isArray(list) || list.length > MAX_DESCRIPTORS) throw bad(source, 'manifest.json is not a list of images');
  const candidates = list.map((e: unknown, i: number) => {
    const entry = (typeof e === 'object' && e !== null ? e : {}) as Json;
    const names = strArray(source, entry.RepoTags, `manifest.json[${i}].RepoTags`) ?? [];
    const configName = str(entry.Config);
    if (!configName) throw bad(source, `manifest.json[${i}] has no Config`);
    return { names, key: configName, entry };
  });
  const chosen = pick(source, candidates, ref).entry;
  const configName = str(chosen.Config)!;
  const configBuf = await source.read(configName, MAX_JSON_BYTES);
  const configDigest = `sha256:${createHash('sha256').update(configBuf).digest('hex')}`;
  // Legacy archives name the config by its digest, recent ones store it as a blob: check either.
  const named = /(?:^|\/)(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(configName);
  if (named && `sha256:${named[1]}` !== configDigest) {
    throw new ImageBuildFailedError(`${source.location}: config ${configName} is corrupted (its content does not match its digest); re-export the image`);
  }
  const { config, diffIds } = parseConfig(source, parseJson(source, configName, configBuf));
  const names = strArray(source, chosen.Layers, 'manifest.json Layers') ?? [];
  if (names.length > MAX_LAYERS || names.length !== diffIds.length) {
    throw bad(source, `manifest.json lists ${names.length} layers but the config has ${diffIds.length} diff_ids`);
  }
  const layers: LayerRef[] = [];
  for (const [i, member] of names.entries()) {
    const sizeBytes = await source.size(member);
    if (sizeBytes === undefined) throw new ImageBuildFailedError(`${source.location}: layer ${member} is missing; the archive is incomplete`);
    const blobMatch = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(member);
    const blob = blobMatch && DIGEST_RE.test(`${blobMatch[1]}:${blobMatch[2]}`) ? blobMatch : null;
    const digest = blob ? `${blob[1]}:${blob[2]}` : diffIds[i]!;
    layers.push({ digest, mediaType: DOCKER_SAVE_LAYER_TYPE, sizeBytes, member, digestOf: blob ? 'blob' : 'uncompressed', diffId: diffIds[i]! });
  }
  // No manifest document exists in this format: the chosen entry, re-serialised, stands for it.
  const manifestDigest = `sha256:${createHash('sha256')
    .update(JSON.stringify({ Config: configName, Layers: names, configDigest }))
    .digest('hex')}`;
  return { manifestDigest, configDigest, config, layers };
}

/** Resolves the image `ref` (or the only image) in `source`. Throws ImageBuildFailedError. */
export function resolveImage(source: ImageSource, ref: string | undefined): Promise<ResolvedImage> {
  return source.format === 'oci-layout' ? resolveOci(source, ref) : resolveDocker(source, ref);
}
