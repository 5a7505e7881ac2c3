import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { FILE_CHUNK_DEFAULT_BYTES } from '../../src/guest/agent-protocol.js';
import { composeRuntime, type Runtime } from '../../src/runtime/index.js';
import type { Vm } from '../../src/vm/index.js';
import { alive } from './own-leftovers.js';
import { testDataDir } from '../helpers.js';

/**
 * A file far larger than any agent frame goes into a real guest and comes
 * back through Vm.writeFileFrom / Vm.readFileChunks, in chunks, with the
 * host's memory flat: nothing holds the whole file, on either side of the
 * host. The figures are printed.
 */
const FILE_BYTES = 128 * 1024 * 1024;
const PIECE = 256 * 1024;

/**
 * Random-looking bytes with every piece different, from one reused buffer:
 * the source itself must not make garbage, or the test would measure its
 * own allocations instead of the transfer's (writeFileFrom copies each
 * piece before asking for the next).
 */
function* pieces(total: number): Generator<Buffer> {
  const block = randomBytes(PIECE);
  for (let sent = 0, i = 0; sent < total; sent += PIECE, i++) {
    block.writeUInt32BE(i, 0);
    yield block.subarray(0, Math.min(PIECE, total - sent));
  }
}

describe('streaming a large file through the agent (real VM)', () => {
  let runtime: Runtime;
  let vm: Vm;
  let pid = 0;

  beforeAll(async () => {
    const dataDir = testDataDir();
    const { config } = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir });
    runtime = await composeRuntime(config, { networking: false });
    // The guest keeps the file in RAM (its root is an initramfs).
    vm = await runtime.service.create({ profile: runtime.config.profiles.minimal!, memoryMib: 512 });
    pid = vm.pid!;
  });

  afterAll(async () => {
    await runtime?.close('test finished');
    expect(pid === 0 || (!alive(pid) && !existsSync(join(runtime.layout.runVms, vm.id)))).toBe(true);
  });

  it(`round-trips ${FILE_BYTES / 2 ** 20} MiB with the SHA-256 intact and host memory flat`, async () => {
    const rssStart = process.memoryUsage().rss;
    let rssMax = rssStart;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 50);
    try {
      const sent = createHash('sha256');
      async function* source() {
        for (const piece of pieces(FILE_BYTES)) {
          sent.update(piece);
          yield piece;
        }
      }
      let t = performance.now();
      const written = await vm.writeFileFrom('/tmp/big.bin', source(), { chunkBytes: FILE_CHUNK_DEFAULT_BYTES });
      const uploadMs = performance.now() - t;
      const uploadGrowthMiB = (rssMax - rssStart) / 2 ** 20;
      expect(written).toEqual({ bytes: FILE_BYTES });
      const expected = sent.digest('hex');

      const inGuest = await vm.exec({ argv: ['sha256sum', '/tmp/big.bin'], timeoutMs: 300_000 });
      expect(inGuest.stdout.toString().split(' ')[0]).toBe(expected);

      t = performance.now();
      const received = createHash('sha256');
      let bytes = 0;
      let largest = 0;
      for await (const chunk of vm.readFileChunks('/tmp/big.bin', { chunkBytes: FILE_CHUNK_DEFAULT_BYTES })) {
        received.update(chunk);
        bytes += chunk.length;
        largest = Math.max(largest, chunk.length);
      }
      const downloadMs = performance.now() - t;
      clearInterval(sampler);
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
      const growthMiB = (rssMax - rssStart) / 2 ** 20;
      const mib = FILE_BYTES / 2 ** 20;
      console.log(
        `[file-stream] ${mib} MiB upload ${(uploadMs / 1000).toFixed(1)} s (${(mib / (uploadMs / 1000)).toFixed(1)} MiB/s), ` +
          `download ${(downloadMs / 1000).toFixed(1)} s (${(mib / (downloadMs / 1000)).toFixed(1)} MiB/s), ` +
          `chunks of ${FILE_CHUNK_DEFAULT_BYTES / 2 ** 20} MiB; host RSS growth max ${uploadGrowthMiB.toFixed(1)} MiB during the upload, ${growthMiB.toFixed(1)} MiB overall`,
      );
      expect(bytes).toBe(FILE_BYTES);
      expect(largest).toBeLessThanOrEqual(FILE_CHUNK_DEFAULT_BYTES);
      expect(received.digest('hex')).toBe(expected);
      // A few chunks in flight (data, base64, JSON frame), never the file.
      expect(growthMiB).toBeLessThan(64);
    } finally {
      clearInterval(sampler);
    }
  }, 1_200_000);
});
