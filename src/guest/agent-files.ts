/**
 * Chunked file transfer over the agent channel (docs/agent-protocol.md,
 * "Chunked file transfer"): a file of any size moves as a sequence of
 * bounded write_file / read_file requests, one in flight, so host memory
 * stays constant. Built only on AgentClient's public single-request calls;
 * it holds no state between calls and does no I/O of its own.
 */
import { InvalidArgumentError, PayloadTooLargeError } from '../errors/index.js';
import type { AgentClient } from './agent-client.js';
import { FILE_CHUNK_DEFAULT_BYTES, FILE_CHUNK_MAX_BYTES } from './agent-protocol.js';
import type { AgentCallOptions, ReadFileChunksOptions, WriteFileFromOptions } from './agent-types.js';

function chunkSize(what: string, value: number | undefined): number {
  if (value === undefined) return FILE_CHUNK_DEFAULT_BYTES;
  if (!(Number.isSafeInteger(value) && value >= 1 && value <= FILE_CHUNK_MAX_BYTES)) {
    throw new InvalidArgumentError(`${what} chunkBytes must be an integer between 1 and ${FILE_CHUNK_MAX_BYTES}, got ${String(value)}`);
  }
  return value;
}

/**
 * Writes everything `source` yields to `path` in the guest, replacing the
 * file, in write_file requests of at most `chunkBytes`: one chunk is
 * buffered and one request is in flight at a time, so memory stays
 * constant whatever the size. The first request creates or truncates the
 * file (applying `mode` and `mkdirs`), the rest append; an empty source
 * leaves an empty file. On failure the guest keeps the part written so far.
 * Throws as AgentClient.writeFile, InvalidArgumentError for bad options, and
 * whatever `source` throws. `options.timeoutMs` applies to each request.
 */
export async function writeFileFrom(
  client: Pick<AgentClient, 'writeFile'>,
  path: string,
  source: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>,
  fileOptions: WriteFileFromOptions = {},
  options: AgentCallOptions = {},
): Promise<{ bytes: number }> {
  if (fileOptions.mode !== undefined && !(Number.isSafeInteger(fileOptions.mode) && fileOptions.mode >= 0 && fileOptions.mode <= 0o7777)) {
    throw new InvalidArgumentError(`writeFileFrom mode must be an integer between 0 and ${0o7777}, got ${String(fileOptions.mode)}`);
  }
  const chunkBytes = chunkSize('writeFileFrom', fileOptions.chunkBytes);
  const chunk = Buffer.allocUnsafe(chunkBytes);
  let filled = 0;
  let bytes = 0;
  let first = true;
  const flush = async () => {
    // The request is fully encoded before the first await, so the chunk
    // buffer can be refilled while it travels.
    await client.writeFile(
      path,
      chunk.subarray(0, filled),
      first ? { mode: fileOptions.mode, mkdirs: fileOptions.mkdirs, append: false } : { append: true },
      options,
    );
    bytes += filled;
    filled = 0;
    first = false;
  };
  for await (const piece of source) {
    let data = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
    while (data.length > 0) {
      const n = Math.min(data.length, chunkBytes - filled);
      chunk.set(data.subarray(0, n), filled);
      filled += n;
      data = data.subarray(n);
      if (filled === chunkBytes) await flush();
    }
  }
  if (filled > 0 || first) await flush();
  return { bytes };
}

/**
 * Reads `path` from the guest in read_file requests of at most
 * `chunkBytes` at increasing offsets, yielding each piece as it arrives
 * (one request in flight, nothing kept after a piece is yielded). Ends at
 * the end of the file as the agent sees it while reading; a file that
 * keeps growing is followed up to `maxBytes` (then PayloadTooLargeError).
 * A file that cannot seek (FIFO) fails with FILE_ERROR after its first
 * chunk (docs/agent-protocol.md). Throws as AgentClient.readFileAt (FILE_NOT_FOUND,
 * FILE_ERROR, AGENT_PROTOCOL); InvalidArgumentError for a bad chunk size,
 * at the first iteration.
 */
export async function* readFileChunks(
  client: Pick<AgentClient, 'readFileAt'>,
  path: string,
  fileOptions: ReadFileChunksOptions = {},
  options: AgentCallOptions = {},
): AsyncGenerator<Buffer, void, undefined> {
  const chunkBytes = chunkSize('readFileChunks', fileOptions.chunkBytes);
  const maxBytes = fileOptions.maxBytes ?? Infinity;
  const tooLarge = (what: string) =>
    new PayloadTooLargeError(`${path} in the guest ${what} the ${maxBytes}-byte download limit (api.max_download_bytes)`, {
      details: { path, limit_bytes: maxBytes },
    });
  for (let offset = 0; ;) {
    const r = await client.readFileAt(path, offset, Math.min(chunkBytes, Math.max(1, maxBytes - offset + 1)), options);
    if (offset === 0 && r.size > maxBytes) throw tooLarge(`is ${r.size} bytes, over`);
    if (offset + r.data.length > maxBytes) throw tooLarge('grew past');
    offset += r.data.length;
    if (r.data.length > 0) yield r.data;
    if (!r.truncated) return;
  }
}
