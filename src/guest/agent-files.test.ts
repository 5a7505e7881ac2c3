import { describe, expect, it } from 'vitest';
import { readFileChunks } from './agent-files.js';
import type { ReadFileResult } from './agent-types.js';

/** A guest file as readFileAt sees it: `size` reported, `content(offset, length)` read. */
function guestFile(size: number, content: (offset: number, length: number) => Buffer, endless = false) {
  return {
    reads: 0,
    async readFileAt(_path: string, offset: number, length: number): Promise<ReadFileResult> {
      this.reads += 1;
      const data = content(offset, length);
      return { data, size: endless ? offset + data.length : size, truncated: endless || offset + data.length < size };
    },
  };
}

async function collect(it: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const c of it) n += c.length;
  return n;
}

describe('readFileChunks', () => {
  it('reads a file in chunks up to its end', async () => {
    const f = guestFile(10_000, (o, l) => Buffer.alloc(Math.max(0, Math.min(l, 10_000 - o)), 1));
    expect(await collect(readFileChunks(f, '/f', { chunkBytes: 4096 }))).toBe(10_000);
    expect(f.reads).toBe(3);
  });

  it('refuses a file larger than maxBytes at its first reply', async () => {
    const f = guestFile(10_000, (o, l) => Buffer.alloc(Math.max(0, Math.min(l, 10_000 - o)), 1));
    await expect(collect(readFileChunks(f, '/big', { chunkBytes: 4096, maxBytes: 5000 }))).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      details: { limit_bytes: 5000 },
    });
    expect(f.reads).toBe(1);
  });

  it('stops an endless file (/dev/zero, a guest appending) at maxBytes instead of streaming forever', async () => {
    const f = guestFile(0, (_o, l) => Buffer.alloc(l), true);
    await expect(collect(readFileChunks(f, '/dev/zero', { chunkBytes: 4096, maxBytes: 20_000 }))).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(f.reads).toBeLessThanOrEqual(6);
  });

  it('allows a file of exactly maxBytes', async () => {
    const f = guestFile(8192, (o, l) => Buffer.alloc(Math.max(0, Math.min(l, 8192 - o)), 1));
    expect(await collect(readFileChunks(f, '/f', { chunkBytes: 4096, maxBytes: 8192 }))).toBe(8192);
  });
});
