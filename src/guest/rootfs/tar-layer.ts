/**
 * Streams one layer blob through its digest check, gzip decompression
 * (detected from the bytes; zstd is refused) and node-tar's parser, handing
 * each entry in order to an async callback that must consume it. The blob
 * is hostile: the decompressed size is bounded, a malformed tar is an
 * error, and the digests are checked when the stream ends (the caller must
 * treat what it wrote as untrusted until this resolves).
 */

import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { ImageBuildFailedError } from '../../errors/index.js';
import { digestHex, type LayerRef } from './oci-manifest.js';
import type { ImageSource } from './oci-source.js';

export interface WalkOptions {
  /** Called for each entry, one at a time; must consume (read or resume) it. */
  onEntry: (entry: ReadEntry) => Promise<void>;
  /** Entries the parser could not represent (unknown types, oversized metadata). */
  onIgnored: (path: string, reason: string) => void;
  /** Largest decompressed tar stream accepted (headers and padding included). */
  maxTarBytes: number;
  /** Also check the uncompressed stream against the config's diff_id. */
  checkDiffId: boolean;
}

function tap(onChunk: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        onChunk(chunk);
        cb(null, chunk);
      } catch (err) {
        cb(err as Error);
      }
    },
  });
}

/** Compression of a layer from its first bytes. */
export function compressionOf(head: Buffer): 'gzip' | 'zstd' | 'none' {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/**
 * Reads `layer` from `source`, calling `onEntry` for every entry in order.
 * Resolves once every entry was handled and the digests matched; rejects
 * with ImageBuildFailedError (a corrupted blob names the layer digest) or
 * with whatever `onEntry` threw. After a rejection no further entry is
 * handed out and the callback in progress has finished.
 */
export async function walkLayer(source: ImageSource, layer: LayerRef, opts: WalkOptions): Promise<void> {
  const compression = compressionOf(await source.head(layer.member, 4));
  if (compression === 'zstd') {
    throw new ImageBuildFailedError(
      `${source.location}: layer ${layer.digest} is zstd-compressed, which is not supported; re-export with gzip (\`skopeo copy --dest-compress-format gzip ...\`)`,
    );
  }
  const { algorithm, hex } = digestHex(layer.digest);
  const blobHash: Hash | null = layer.digestOf === 'blob' ? createHash(algorithm) : null;
  const diffHash: Hash | null = opts.checkDiffId || layer.digestOf === 'uncompressed' ? createHash('sha256') : null;
  let tarBytes = 0;
  let allZero = true;
  const input = source.stream(layer.member);
  const stages: Array<Readable | Transform> = [input, tap((c) => blobHash?.update(c))];
  // Large output chunks: node-tar's parser costs per chunk (16 KiB chunks make it ~4x slower).
  if (compression === 'gzip') stages.push(createGunzip({ chunkSize: 256 * 1024 }));
  stages.push(
    tap((c) => {
      tarBytes += c.length;
      if (tarBytes > opts.maxTarBytes) {
        throw new ImageBuildFailedError(`layer ${layer.digest} decompresses to more than ${opts.maxTarBytes} bytes, over the unpack limit`);
      }
      if (allZero && c.some((b) => b !== 0)) allZero = false;
      diffHash?.update(c);
    }),
  );

  let failure: unknown;
  let current: ReadEntry | undefined;
  let chain: Promise<void> = Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const fail = (err: unknown): void => {
      if (failure !== undefined) return;
      failure = err instanceof Error ? err : new Error(String(err));
      for (const s of stages) s.destroy();
      current?.destroy();
      // Settle only once the entry in progress stopped writing.
      void chain.finally(() => reject(failure));
    };
    const parser = new Parser({
      onReadEntry: (entry: ReadEntry) => {
        chain = chain
          .then(async () => {
            if (failure !== undefined) {
              entry.resume();
              return;
            }
            current = entry;
            await opts.onEntry(entry);
            current = undefined;
          })
          .catch(fail);
      },
    });
    parser.on('ignoredEntry', (entry: ReadEntry) => {
      opts.onIgnored(entry.path, entry.meta ? 'oversized tar metadata record' : `unsupported entry type ${entry.header.typeKey}`);
    });
    parser.on('warn', (code: string, message: string) => {
      // An empty layer (only end-of-archive zero blocks, or nothing) is valid in images.
      if (code === 'TAR_BAD_ARCHIVE' && allZero && message === 'Unrecognized archive format') return;
      fail(new ImageBuildFailedError(`${source.location}: layer ${layer.digest} is not a valid tar (${code}: ${message}); re-export the image`));
    });
    parser.on('error', (err: Error) =>
      fail(new ImageBuildFailedError(`${source.location}: layer ${layer.digest} is not a valid tar (${err.message})`, { cause: err })),
    );
    parser.on('end', () => {
      void chain.then(() => {
        if (failure !== undefined) return;
        if (blobHash && blobHash.digest('hex') !== hex) {
          return fail(
            new ImageBuildFailedError(`${source.location}: blob ${layer.digest} is corrupted (its content does not match its digest); re-export the image`),
          );
        }
        const diff = diffHash?.digest('hex');
        if (diff !== undefined && layer.digestOf === 'uncompressed' && diff !== hex) {
          return fail(
            new ImageBuildFailedError(
              `${source.location}: layer ${layer.member} is corrupted (its content does not match ${layer.digest}); re-export the image`,
            ),
          );
        }
        if (diff !== undefined && opts.checkDiffId && `sha256:${diff}` !== layer.diffId) {
          return fail(
            new ImageBuildFailedError(
              `${source.location}: layer ${layer.digest} does not match the config's diff_id ${layer.diffId}; the image is inconsistent, re-export it`,
            ),
          );
        }
        resolve();
      }, fail);
    });
    for (const s of stages)
      s.on('error', (err) =>
        fail(
          err instanceof ImageBuildFailedError
            ? err
            : new ImageBuildFailedError(`${source.location}: cannot read layer ${layer.digest}: ${err.message}`, { cause: err }),
        ),
      );
    let prev: Readable = stages[0] as Readable;
    for (const s of stages.slice(1)) prev = prev.pipe(s as Transform);
    prev.pipe(parser as unknown as NodeJS.WritableStream);
  });
}
