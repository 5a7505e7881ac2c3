import { ImageBuildFailedError } from '../errors/index.js';

/** Where the compressed kernel lives inside a bzImage, per the x86 boot protocol. */
export interface BzImagePayload {
  /** Byte offset of the compressed payload in the bzImage file. */
  offset: number;
  /** Length of the compressed payload in bytes. */
  length: number;
  /** Compression format detected from the payload's magic bytes. */
  format: 'lz4' | 'gzip' | 'xz' | 'zstd' | 'unknown';
  /** Boot protocol version, e.g. 0x020f. */
  protocolVersion: number;
}

const SETUP_SECTS_OFFSET = 0x1f1;
const HEADER_MAGIC_OFFSET = 0x202; // "HdrS"
const VERSION_OFFSET = 0x206;
const PAYLOAD_OFFSET_FIELD = 0x248;
const PAYLOAD_LENGTH_FIELD = 0x24c;

/**
 * Locates the compressed vmlinux inside a bzImage (Linux x86 boot protocol
 * >= 2.08): payload offset = (setup_sects + 1) * 512 + payload_offset,
 * length = payload_length. Pure: reads only the given buffer.
 * Throws ImageBuildFailedError when the buffer is not a usable bzImage.
 */
export function locateBzImagePayload(image: Buffer): BzImagePayload {
  if (image.length < 0x250 || image.toString('latin1', HEADER_MAGIC_OFFSET, HEADER_MAGIC_OFFSET + 4) !== 'HdrS') {
    throw new ImageBuildFailedError('kernel image is not a bzImage (no "HdrS" header magic at 0x202); use a Debian linux-image-*-cloud-amd64 vmlinuz');
  }
  const protocolVersion = image.readUInt16LE(VERSION_OFFSET);
  if (protocolVersion < 0x0208) {
    throw new ImageBuildFailedError(`bzImage boot protocol ${protocolVersion.toString(16)} is older than 2.08 and has no payload fields`);
  }
  const setupSects = image[SETUP_SECTS_OFFSET] || 4; // 0 means 4, per the boot protocol
  const offset = (setupSects + 1) * 512 + image.readUInt32LE(PAYLOAD_OFFSET_FIELD);
  const length = image.readUInt32LE(PAYLOAD_LENGTH_FIELD);
  if (length === 0 || offset + length > image.length) {
    throw new ImageBuildFailedError(`bzImage payload (offset ${offset}, length ${length}) lies outside the ${image.length}-byte file`);
  }
  return { offset, length, format: detectFormat(image.subarray(offset, offset + 6)), protocolVersion };
}

function detectFormat(magic: Buffer): BzImagePayload['format'] {
  if (magic.readUInt32LE(0) === 0x184c2102 || magic.readUInt32LE(0) === 0x184d2204) return 'lz4';
  if (magic[0] === 0x1f && magic[1] === 0x8b) return 'gzip';
  if (magic.toString('latin1', 1, 6) === '7zXZ\0') return 'xz';
  if (magic.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'unknown';
}

/** True when `buf` starts with the ELF magic. */
export function isElf(buf: Buffer): boolean {
  return buf.length >= 4 && buf[0] === 0x7f && buf.toString('latin1', 1, 4) === 'ELF';
}
