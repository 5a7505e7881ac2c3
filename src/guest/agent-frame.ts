/**
 * Agent protocol framing: a 4-byte unsigned big-endian length N, then N bytes
 * of UTF-8 JSON holding one object (docs/agent-protocol.md).
 *
 * Requests are capped at 16 MiB (the agent refuses larger ones). Replies may
 * be larger, because an exec reply carries two output streams of up to 8 MiB
 * each in base64 (about 22 MiB); no reply may exceed 32 MiB, and the client
 * narrows that per request (agent-protocol.ts replyFrameLimit), so a guest
 * cannot make the host buffer more than the request it is answering allows.
 */
import { AgentProtocolError, InvalidArgumentError, type TfcError } from '../errors/index.js';
import { base64Decode, base64EncodeInto, base64Length } from './base64.js';

export const FRAME_HEADER_BYTES = 4;
export const MAX_REQUEST_FRAME_BYTES = 16 * 1024 * 1024;
export const MAX_RESPONSE_FRAME_BYTES = 32 * 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Serialises `message` as one frame. Throws InvalidArgumentError when the
 * JSON is longer than `maxBytes` (default: the request limit), since the
 * agent would refuse it; the caller should split the work (e.g. write a large
 * file in appended chunks).
 */
export function encodeFrame(message: object, maxBytes: number = MAX_REQUEST_FRAME_BYTES): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  if (body.length > maxBytes) {
    throw new InvalidArgumentError(`agent request of ${body.length} bytes exceeds the ${maxBytes}-byte frame limit; send the data in smaller pieces`, {
      details: { bytes: body.length, max_bytes: maxBytes },
    });
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Like encodeFrame, with `data` added as the base64 string member `key`
 * (e.g. write_file's `data_b64`), written straight into the frame: no
 * intermediate base64 or JSON string of the payload exists, so streaming a
 * file leaves one frame-sized buffer of garbage per chunk, not four.
 * `message` must not already have `key`. Throws as encodeFrame.
 */
export function encodeFrameWithData(message: object, key: string, data: Uint8Array, maxBytes: number = MAX_REQUEST_FRAME_BYTES): Buffer {
  const json = JSON.stringify(message);
  const head = Buffer.from(`${json.slice(0, -1)}${json.length > 2 ? ',' : ''}${JSON.stringify(key)}:"`, 'utf8');
  const length = head.length + base64Length(data.length) + 2;
  if (length > maxBytes) {
    throw new InvalidArgumentError(`agent request of ${length} bytes exceeds the ${maxBytes}-byte frame limit; send the data in smaller pieces`, {
      details: { bytes: length, max_bytes: maxBytes },
    });
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  frame.writeUInt32BE(length, 0);
  head.copy(frame, FRAME_HEADER_BYTES);
  const at = FRAME_HEADER_BYTES + head.length + base64EncodeInto(data, frame, FRAME_HEADER_BYTES + head.length);
  frame[at] = 0x22; // '"'
  frame[at + 1] = 0x7d; // '}'
  return frame;
}

export interface FrameDecoderOptions {
  /**
   * Largest accepted frame body, or a function asked each time a frame
   * header arrives (the limit of whatever reply may come next). Never more
   * than MAX_RESPONSE_FRAME_BYTES. Default MAX_RESPONSE_FRAME_BYTES.
   */
  maxFrameBytes?: number | (() => number);
  /**
   * Decode long base64 members (a key ending in `_b64` whose value is at
   * least BINARY_MIN_BYTES of valid base64) straight into Buffers: such a
   * member of the message or of its `result` then holds a Buffer instead of
   * a string. Saves the host three string copies of every file chunk and
   * exec output. Default false.
   */
  binaryFields?: boolean;
}

/** Base64 members shorter than this stay strings (not worth the bookkeeping). */
export const BINARY_MIN_BYTES = 4096;
const B64_MEMBER = Buffer.from('_b64":"');
/** JSON text of the placeholder; JSON.parse turns it into a string starting with NUL, which no real value of a _b64 field has. */
const PLACEHOLDER = '\\u0000tfc-bin:';

/**
 * Incremental decoder: push chunks as they arrive, get back every complete
 * message. Chunks are kept as a list and joined once per frame, so a 20 MiB
 * reply arriving in 64 KiB pieces costs one copy, not hundreds.
 *
 * A zero or oversized length, invalid UTF-8/JSON, or a body that is not a
 * JSON object throws AgentProtocolError. The byte stream is then out of sync
 * for good: the decoder stays failed and every later push throws too.
 */
export class FrameDecoder {
  private readonly limit: () => number;
  private readonly binaryFields: boolean;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failure: TfcError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    const max = options.maxFrameBytes ?? MAX_RESPONSE_FRAME_BYTES;
    this.binaryFields = options.binaryFields ?? false;
    this.limit = typeof max === 'function' ? () => Math.min(max(), MAX_RESPONSE_FRAME_BYTES) : () => Math.min(max, MAX_RESPONSE_FRAME_BYTES);
  }

  /** True once a bad frame was seen; every later push throws. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Bytes received but not yet returned as a message. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Adds `chunk` and returns the messages it completed. With `each`, every
   * message is handed to it before the next frame header is checked, so a
   * limit function sees the effect of the message before it (each reply
   * changes which reply may come next); the returned list is then empty.
   * `each` also gets the frame's body length (events have a cap of their own).
   */
  push(chunk: Buffer, each?: (message: Record<string, unknown>, frameBytes: number) => void): Record<string, unknown>[] {
    if (this.failure) throw this.failure;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const messages: Record<string, unknown>[] = [];
    for (;;) {
      if (this.buffered < FRAME_HEADER_BYTES) break;
      const length = this.peekLength();
      const max = length === 0 ? 0 : this.limit();
      if (length === 0 || length > max) {
        this.chunks = []; // drop what was buffered: nothing of it will ever be used
        this.buffered = 0;
        this.failure = new AgentProtocolError(
          length === 0
            ? 'agent sent an empty frame; the connection is out of sync'
            : `agent sent a frame of ${length} bytes, more than the ${max}-byte limit for the reply it may send now`,
          { details: { frame_bytes: length, max_frame_bytes: max } },
        );
        throw this.failure;
      }
      if (this.buffered < FRAME_HEADER_BYTES + length) break;
      const body = this.take(FRAME_HEADER_BYTES + length).subarray(FRAME_HEADER_BYTES);
      const message = this.parse(body);
      if (each) each(message, length);
      else messages.push(message);
    }
    return messages;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= FRAME_HEADER_BYTES) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks, FRAME_HEADER_BYTES).readUInt32BE(0);
  }

  /** Removes and returns the first n buffered bytes. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks, this.buffered);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }

  private parse(body: Buffer): Record<string, unknown> {
    let value: unknown;
    const binary = this.binaryFields && body.length >= BINARY_MIN_BYTES ? extractBinary(body) : undefined;
    try {
      value = JSON.parse(utf8.decode(binary ? binary.body : body));
    } catch (cause) {
      this.failure = new AgentProtocolError('agent sent a frame that is not valid UTF-8 JSON', { cause });
      this.chunks = [];
      this.buffered = 0;
      throw this.failure;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.failure = new AgentProtocolError('agent sent a frame that is not a JSON object');
      this.chunks = [];
      this.buffered = 0;
      throw this.failure;
    }
    if (binary) restoreBinary(value as Record<string, unknown>, binary.data);
    return value as Record<string, unknown>;
  }
}

/**
 * Cuts every long, valid base64 value of a `..._b64` key out of a JSON body,
 * leaving a placeholder string. The raw bytes `_b64":"` can only be a key's
 * end and its string value's start (a quote inside a JSON string is escaped);
 * base64 has no quotes or escapes, so the value ends at the next quote. A
 * value that is not valid base64 is left for JSON.parse, as is everything
 * else. Returns undefined when nothing was cut.
 */
function extractBinary(body: Buffer): { body: Buffer; data: Buffer[] } | undefined {
  const parts: Buffer[] = [];
  const data: Buffer[] = [];
  let copied = 0;
  for (let from = 0; ;) {
    const key = body.indexOf(B64_MEMBER, from);
    if (key < 0) break;
    const start = key + B64_MEMBER.length;
    const end = body.indexOf(0x22, start);
    if (end < 0) break;
    from = end + 1;
    if (end - start < BINARY_MIN_BYTES) continue;
    const decoded = base64Decode(body.subarray(start, end));
    if (!decoded) continue;
    parts.push(body.subarray(copied, start), Buffer.from(`${PLACEHOLDER}${data.length}`));
    data.push(decoded);
    copied = end;
  }
  if (data.length === 0) return undefined;
  parts.push(body.subarray(copied));
  return { body: Buffer.concat(parts), data };
}

/** Puts the cut-out Buffers back where their placeholders ended up (the message and its `result`). */
function restoreBinary(message: Record<string, unknown>, data: Buffer[]): void {
  const marker = '\u0000tfc-bin:';
  for (const target of [message, message.result]) {
    if (typeof target !== 'object' || target === null || Array.isArray(target)) continue;
    const record = target as Record<string, unknown>;
    for (const [k, v] of Object.entries(record)) {
      if (typeof v === 'string' && v.startsWith(marker)) {
        const i = Number(v.slice(marker.length));
        if (Number.isInteger(i) && data[i]) record[k] = data[i];
      }
    }
  }
}
