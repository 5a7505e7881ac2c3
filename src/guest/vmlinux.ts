import { closeSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageBuildFailedError } from '../errors/index.js';
import { runCommand } from '../process/index.js';
import { isElf, locateBzImagePayload } from './bzimage.js';

/**
 * Unpacks the LZ4 payload of a bzImage into an ELF vmlinux (what both VMMs
 * boot directly, with no in-guest decompression). Uses `work` for a scratch
 * file it removes. Throws ImageBuildFailedError when the file is not an
 * LZ4 bzImage or the result is not the ELF of the announced size.
 */
export async function extractVmlinux(vmlinuzPath: string, output: string, work: string): Promise<string> {
  const bz = readFileSync(vmlinuzPath);
  const payload = locateBzImagePayload(bz);
  if (payload.format !== 'lz4') {
    throw new ImageBuildFailedError(`kernel payload in ${vmlinuzPath} is ${payload.format}, this builder handles LZ4 (Debian cloud kernels)`);
  }
  // The kernel build appends the uncompressed size (u32 LE) to the compressed
  // stream; lz4 rejects it as trailing garbage, so strip it and use it to
  // verify the result instead.
  const expectedSize = bz.readUInt32LE(payload.offset + payload.length - 4);
  const payloadPath = join(work, 'payload.lz4');
  writeFileSync(payloadPath, bz.subarray(payload.offset, payload.offset + payload.length - 4));
  await runCommand('lz4', ['-d', '-f', '-q', payloadPath, output], { timeoutMs: 120_000, hint: 'install lz4 with `apt-get install lz4`' });
  rmSync(payloadPath);
  const head = Buffer.alloc(4);
  const fd = openSync(output, 'r');
  readSync(fd, head, 0, 4, 0);
  closeSync(fd);
  if (!isElf(head)) throw new ImageBuildFailedError(`decompressed kernel ${output} is not an ELF file`);
  if (statSync(output).size !== expectedSize) {
    throw new ImageBuildFailedError(`decompressed kernel is ${statSync(output).size} bytes, the bzImage says ${expectedSize}`);
  }
  return `${(statSync(output).size / 1048576).toFixed(1)} MiB ELF`;
}
