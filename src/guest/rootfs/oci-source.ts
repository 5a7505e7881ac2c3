/**
 * Where an image's files come from: a directory (OCI layout, or an unpacked
 * `docker save`) or an uncompressed tar of either, read in place through
 * its index. Member names come from hostile JSON: they are checked to stay
 * relative (no absolute path, no `..`) before touching the filesystem.
 * Nothing here writes.
 */

import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageBuildFailedError } from '../../errors/index.js';
import { indexTar, memberName, type TarMember } from './tar-index.js';

export type OciSourceFormat = 'oci-layout' | 'docker-archive';

/** Read access to the members of an image input, by relative name. */
export interface ImageSource {
  /** The path the user gave, for messages. */
  readonly location: string;
  readonly format: OciSourceFormat;
  /** Size of member `name`, or undefined when it does not exist (or is not a regular file). */
  size(name: string): Promise<number | undefined>;
  /** The whole member (at most `maxBytes`, else an error naming it). */
  read(name: string, maxBytes: number): Promise<Buffer>;
  /** The first `length` bytes (fewer if the member is shorter). */
  head(name: string, length: number): Promise<Buffer>;
  /** A stream of the member's bytes. */
  stream(name: string): Readable;
}

const NO_FORMAT_HINT = 'create one with `docker save IMAGE -o app.tar` or `skopeo copy docker-daemon:IMAGE oci:DIR`';

/** Rejects member names that could leave the source directory. */
export function checkMemberName(name: string, location: string): string {
  const clean = memberName(name);
  const parts = clean.split('/');
  if (name.startsWith('/') || clean === '' || name.includes('\0') || parts.some((p) => p === '..' || p === '')) {
    throw new ImageBuildFailedError(`${location} names an invalid member path ${JSON.stringify(name)}; the image archive is malformed`);
  }
  return clean;
}

class DirSource implements ImageSource {
  constructor(
    readonly location: string,
    readonly format: OciSourceFormat,
  ) {}

  private path(name: string): string {
    return join(this.location, checkMemberName(name, this.location));
  }

  async size(name: string): Promise<number | undefined> {
    try {
      const st = await stat(this.path(name));
      return st.isFile() ? st.size : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  async read(name: string, maxBytes: number): Promise<Buffer> {
    const size = await this.size(name);
    if (size === undefined) throw new ImageBuildFailedError(`${this.location}: ${name} is missing; the image is incomplete`);
    if (size > maxBytes) throw new ImageBuildFailedError(`${this.location}: ${name} is ${size} bytes, more than the ${maxBytes} allowed for it`);
    return this.head(name, size);
  }

  async head(name: string, length: number): Promise<Buffer> {
    const fh = await open(this.path(name), 'r');
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  stream(name: string): Readable {
    return createReadStream(this.path(name), { highWaterMark: 1024 * 1024 });
  }
}

class TarSource implements ImageSource {
  constructor(
    readonly location: string,
    readonly format: OciSourceFormat,
    private readonly members: Map<string, TarMember>,
  ) {}

  private member(name: string): TarMember | undefined {
    return this.members.get(checkMemberName(name, this.location));
  }

  async size(name: string): Promise<number | undefined> {
    return this.member(name)?.sizeBytes;
  }

  async read(name: string, maxBytes: number): Promise<Buffer> {
    const m = this.member(name);
    if (!m) throw new ImageBuildFailedError(`${this.location}: ${name} is missing from the archive; the image is incomplete`);
    if (m.sizeBytes > maxBytes) {
      throw new ImageBuildFailedError(`${this.location}: ${name} is ${m.sizeBytes} bytes, more than the ${maxBytes} allowed for it`);
    }
    return this.head(name, m.sizeBytes);
  }

  async head(name: string, length: number): Promise<Buffer> {
    const m = this.member(name);
    if (!m) throw new ImageBuildFailedError(`${this.location}: ${name} is missing from the archive`);
    const fh = await open(this.location, 'r');
    try {
      const want = Math.min(length, m.sizeBytes);
      const buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, m.offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  stream(name: string): Readable {
    const m = this.member(name);
    if (!m) throw new ImageBuildFailedError(`${this.location}: ${name} is missing from the archive`);
    if (m.sizeBytes === 0) return Readable.from([]);
    return createReadStream(this.location, { start: m.offset, end: m.offset + m.sizeBytes - 1, highWaterMark: 1024 * 1024 });
  }
}

/**
 * Opens `source` and detects its format: a directory or tar holding an OCI
 * layout (`oci-layout` + `index.json`) is "oci-layout" (recent `docker save`
 * writes both layouts; the OCI one is preferred), one with `manifest.json`
 * is "docker-archive". Throws ImageBuildFailedError naming how to make one.
 */
export async function openImageSource(source: string): Promise<ImageSource> {
  let st;
  try {
    st = await stat(source);
  } catch {
    throw new ImageBuildFailedError(`${source} does not exist; ${NO_FORMAT_HINT}`);
  }
  let probe: (format: OciSourceFormat) => ImageSource;
  if (st.isDirectory()) {
    probe = (format) => new DirSource(source, format);
  } else if (st.isFile()) {
    const members = await indexTar(source);
    probe = (format) => new TarSource(source, format, members);
  } else {
    throw new ImageBuildFailedError(`${source} is neither a directory nor a regular file; ${NO_FORMAT_HINT}`);
  }
  const oci = probe('oci-layout');
  if ((await oci.size('oci-layout')) !== undefined && (await oci.size('index.json')) !== undefined) return oci;
  const docker = probe('docker-archive');
  if ((await docker.size('manifest.json')) !== undefined) return docker;
  throw new ImageBuildFailedError(
    `${source} is neither an OCI image layout (no oci-layout and index.json) nor a docker save archive (no manifest.json); ${NO_FORMAT_HINT}`,
  );
}
