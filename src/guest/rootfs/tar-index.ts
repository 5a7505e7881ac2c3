/**
 * Index of an outer image archive (`docker save` output or an OCI layout
 * packed as a tar): maps each regular file's name to where its bytes sit in
 * the archive, so blobs are read in place (no copy of a multi-GiB archive).
 *
 * Headers are decoded by node-tar's `Header`/`Pax`; this file only walks the
 * blocks. The archive is hostile: entry counts and metadata sizes are bounded
 * and a truncated archive is an error. Nothing here writes to disk.
 */

import { open, type FileHandle } from 'node:fs/promises';
import { Header, Pax, type HeaderData } from 'tar';
import { ImageBuildFailedError } from '../../errors/index.js';

/** Where one regular file's bytes live inside the archive. */
export interface TarMember {
  offset: number;
  sizeBytes: number;
}

/** Most members an image archive may hold (layers, configs, manifests). */
export const MAX_ARCHIVE_MEMBERS = 100_000;
/** Largest pax / GNU long-name record accepted. */
const MAX_META_BYTES = 1024 * 1024;
const BLOCK = 512;

/** Normalised member name: no leading "./" or "/", no trailing "/". */
export function memberName(raw: string): string {
  let name = raw;
  while (name.startsWith('./')) name = name.slice(2);
  while (name.startsWith('/')) name = name.slice(1);
  while (name.endsWith('/')) name = name.slice(0, -1);
  return name;
}

async function readExact(fh: FileHandle, position: number, length: number, archive: string): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  if (bytesRead !== length) {
    throw new ImageBuildFailedError(
      `${archive} is truncated (an entry at byte ${position} needs ${length} bytes); re-create it with \`docker save IMAGE -o app.tar\``,
    );
  }
  return buf;
}

/**
 * Reads every header of the uncompressed tar `archive` and returns its regular
 * files by normalised name (a later member with the same name wins, as with
 * tar itself). Throws ImageBuildFailedError when the file is not a tar, is
 * compressed, truncated or has more than MAX_ARCHIVE_MEMBERS members.
 */
export async function indexTar(archive: string): Promise<Map<string, TarMember>> {
  const fh = await open(archive, 'r');
  try {
    const { size } = await fh.stat();
    const members = new Map<string, TarMember>();
    let pos = 0;
    let ex: HeaderData | undefined;
    let gex: HeaderData | undefined;
    let count = 0;
    while (pos + BLOCK <= size) {
      const block = await readExact(fh, pos, BLOCK, archive);
      if (pos === 0 && block[0] === 0x1f && block[1] === 0x8b) {
        throw new ImageBuildFailedError(`${archive} is gzip-compressed; decompress it first (\`gunzip -k ${archive}\`) and pass the .tar`);
      }
      const header = new Header(block, 0, ex, gex);
      if (header.nullBlock) break;
      if (!header.cksumValid || !header.path) {
        throw new ImageBuildFailedError(`${archive} is not a valid tar archive (bad header at byte ${pos}); create it with \`docker save IMAGE -o app.tar\``);
      }
      if (++count > MAX_ARCHIVE_MEMBERS) {
        throw new ImageBuildFailedError(`${archive} has more than ${MAX_ARCHIVE_MEMBERS} members; this is not an image archive`);
      }
      const dataSize = header.size ?? 0;
      if (!Number.isSafeInteger(dataSize) || dataSize < 0) {
        throw new ImageBuildFailedError(`${archive} is not a valid tar archive (bad size in the header at byte ${pos})`);
      }
      const dataOffset = pos + BLOCK;
      if (dataOffset + dataSize > size) {
        throw new ImageBuildFailedError(`${archive} is truncated (member ${header.path} needs ${dataSize} bytes at ${dataOffset}); re-create the archive`);
      }
      const type = header.type;
      if (type === 'ExtendedHeader' || type === 'GlobalExtendedHeader' || type === 'NextFileHasLongPath' || type === 'OldGnuLongPath') {
        if (dataSize > MAX_META_BYTES) throw new ImageBuildFailedError(`${archive}: tar metadata record at byte ${pos} is larger than 1 MiB`);
        const body = (await readExact(fh, dataOffset, dataSize, archive)).toString('utf8');
        if (type === 'ExtendedHeader') ex = Pax.parse(body, ex, false);
        else if (type === 'GlobalExtendedHeader') gex = Pax.parse(body, gex, true);
        else ex = { ...ex, path: body.replace(/\0.*$/s, '') };
      } else {
        if (type === 'File' || type === 'OldFile' || type === 'ContiguousFile') {
          members.set(memberName(header.path), { offset: dataOffset, sizeBytes: dataSize });
        }
        ex = undefined;
      }
      pos = dataOffset + BLOCK * Math.ceil(dataSize / BLOCK);
    }
    if (count === 0) {
      throw new ImageBuildFailedError(`${archive} is not a tar archive (no entries); create one with \`docker save IMAGE -o app.tar\``);
    }
    return members;
  } finally {
    await fh.close();
  }
}
