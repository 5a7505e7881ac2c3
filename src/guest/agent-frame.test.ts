import { describe, expect, it } from 'vitest';
import { AgentProtocolError, InvalidArgumentError } from '../errors/index.js';
import { randomBytes } from 'node:crypto';
import { FrameDecoder, MAX_REQUEST_FRAME_BYTES, MAX_RESPONSE_FRAME_BYTES, encodeFrame, encodeFrameWithData } from './agent-frame.js';

function rawFrame(body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const h = Buffer.alloc(4);
  h.writeUInt32BE(b.length);
  return Buffer.concat([h, b]);
}

describe('encodeFrame', () => {
  it('prefixes the UTF-8 JSON with its big-endian byte length', () => {
    const f = encodeFrame({ v: 1, id: 7, op: 'ping', s: 'é' });
    const body = '{"v":1,"id":7,"op":"ping","s":"é"}';
    expect(f.readUInt32BE(0)).toBe(Buffer.byteLength(body));
    expect(f.subarray(4).toString()).toBe(body);
  });

  it('refuses a request the agent would reject as too large', () => {
    expect(() => encodeFrame({ data: 'x'.repeat(MAX_REQUEST_FRAME_BYTES) })).toThrow(InvalidArgumentError);
    expect(() => encodeFrame({ data: 'x'.repeat(100) }, 50)).toThrow(/exceeds the 50-byte frame limit/);
  });
});

describe('encodeFrameWithData', () => {
  it('gives exactly the frame encodeFrame would, for every length remainder', () => {
    for (let n = 0; n < 10; n++) {
      const data = randomBytes(n);
      const message = { v: 1, id: 9, op: 'write_file', path: '/tmp/é' };
      expect(encodeFrameWithData(message, 'data_b64', data).equals(encodeFrame({ ...message, data_b64: data.toString('base64') }))).toBe(true);
    }
    expect(encodeFrameWithData({}, 'd', Buffer.from('hi')).subarray(4).toString()).toBe('{"d":"aGk="}');
  });

  it('refuses data that does not fit the request limit', () => {
    expect(() => encodeFrameWithData({ id: 1 }, 'data_b64', Buffer.alloc(100), 50)).toThrow(/exceeds the 50-byte frame limit/);
  });
});

describe('FrameDecoder', () => {
  it('reassembles a frame split at every byte, header included', () => {
    const frame = encodeFrame({ id: 1, text: 'hello wörld' });
    const d = new FrameDecoder();
    const out: unknown[] = [];
    for (const byte of frame) out.push(...d.push(Buffer.from([byte])));
    expect(out).toEqual([{ id: 1, text: 'hello wörld' }]);
    expect(d.bufferedBytes).toBe(0);
  });

  it('returns every frame of a chunk and keeps the incomplete tail', () => {
    const a = encodeFrame({ id: 1 });
    const b = encodeFrame({ id: 2 });
    const c = encodeFrame({ id: 3, big: 'y'.repeat(100_000) });
    const all = Buffer.concat([a, b, c]);
    const cut = a.length + b.length + 10;
    const d = new FrameDecoder();
    expect(d.push(all.subarray(0, cut))).toEqual([{ id: 1 }, { id: 2 }]);
    expect(d.bufferedBytes).toBe(10);
    const rest = d.push(all.subarray(cut));
    expect(rest).toHaveLength(1);
    expect((rest[0] as { big: string }).big).toHaveLength(100_000);
  });

  it('rejects a frame longer than its limit as soon as the header arrives, and stays failed', () => {
    const d = new FrameDecoder({ maxFrameBytes: 1024 });
    const h = Buffer.alloc(4);
    h.writeUInt32BE(1025);
    expect(() => d.push(h)).toThrow(AgentProtocolError);
    expect(() => d.push(encodeFrame({ id: 1 }))).toThrow(/1025 bytes, more than the 1024-byte limit/);
  });

  it('asks a limit function at each header, after the previous message was handed over', () => {
    // Like the client: a big reply is allowed only while a big request is outstanding.
    let bigAllowed = true;
    const d = new FrameDecoder({ maxFrameBytes: () => (bigAllowed ? 10_000 : 100) });
    const big = encodeFrame({ id: 1, data: 'b'.repeat(5000) });
    const small = encodeFrame({ id: 2 });
    const seen: unknown[] = [];
    d.push(Buffer.concat([big, small]), (m) => {
      seen.push(m.id);
      bigAllowed = false; // the big request was answered
    });
    expect(seen).toEqual([1, 2]);
    expect(() => d.push(big, () => undefined)).toThrow(/more than the 100-byte limit/);
    expect(d.failed).toBe(true);
    expect(d.bufferedBytes).toBe(0); // nothing of a refused frame is kept
  });

  it('with binaryFields, hands long base64 members over as Buffers and leaves the rest alone', () => {
    const big = randomBytes(10_000);
    const d = new FrameDecoder({ binaryFields: true });
    const frame = encodeFrame({ v: 1, id: 3, ok: true, result: { data_b64: big.toString('base64'), small_b64: 'aGk=', name: 'x_b64":"y', size: 1 } });
    const [m] = d.push(frame);
    const result = (m as { result: Record<string, unknown> }).result;
    expect(Buffer.isBuffer(result.data_b64) && result.data_b64.equals(big)).toBe(true);
    expect(result).toMatchObject({ small_b64: 'aGk=', name: 'x_b64":"y', size: 1 });
    // Not valid base64: stays a string, for validation to judge.
    const odd = 'A'.repeat(5000) + '!';
    const [n] = new FrameDecoder({ binaryFields: true }).push(encodeFrame({ result: { data_b64: odd } }));
    expect((n as { result: { data_b64: unknown } }).result.data_b64).toBe(odd);
  });

  it('never accepts more than MAX_RESPONSE_FRAME_BYTES, whatever the limit says', () => {
    const d = new FrameDecoder({ maxFrameBytes: () => Number.MAX_SAFE_INTEGER });
    expect(() => d.push(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toThrow(new RegExp(`more than the ${MAX_RESPONSE_FRAME_BYTES}-byte limit`));
  });

  it('rejects zero-length frames, bad JSON, invalid UTF-8 and non-objects', () => {
    expect(() => new FrameDecoder().push(Buffer.alloc(4))).toThrow(/empty frame/);
    expect(() => new FrameDecoder().push(rawFrame('{"id":'))).toThrow(/not valid UTF-8 JSON/);
    expect(() => new FrameDecoder().push(rawFrame(Buffer.from([0x22, 0xff, 0x22])))).toThrow(/not valid UTF-8 JSON/);
    expect(() => new FrameDecoder().push(rawFrame('[1,2]'))).toThrow(/not a JSON object/);
  });

  it('accepts replies larger than the request limit', () => {
    const big = rawFrame(JSON.stringify({ id: 1, data: 'z'.repeat(MAX_REQUEST_FRAME_BYTES + 10) }));
    const d = new FrameDecoder();
    const out: Record<string, unknown>[] = [];
    for (let i = 0; i < big.length; i += 65536) out.push(...d.push(big.subarray(i, i + 65536)));
    expect(out).toHaveLength(1);
    expect((out[0]!.data as string).length).toBe(MAX_REQUEST_FRAME_BYTES + 10);
  });
});
