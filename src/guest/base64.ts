/**
 * Standard base64 (with padding) between byte buffers, without the
 * intermediate JavaScript strings Buffer#toString('base64') and
 * Buffer.from(s, 'base64') need: the agent channel moves file chunks and
 * exec output of several MiB as base64, and strings that size live in V8's
 * heap until a major GC, which made a streamed transfer cost the host
 * 100+ MiB of RSS. Pure functions, no I/O.
 */
const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const PAD = 0x3d; // '='
const VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET[i]!] = i;

/** Length of the base64 text for n bytes. */
export function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4;
}

/** Writes the base64 of `data` into `out` at `at`; returns the bytes written (base64Length(data.length)). */
export function base64EncodeInto(data: Uint8Array, out: Uint8Array, at: number): number {
  const start = at;
  const whole = data.length - (data.length % 3);
  for (let i = 0; i < whole; i += 3) {
    const n = (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!;
    out[at++] = ALPHABET[n >>> 18]!;
    out[at++] = ALPHABET[(n >>> 12) & 63]!;
    out[at++] = ALPHABET[(n >>> 6) & 63]!;
    out[at++] = ALPHABET[n & 63]!;
  }
  const rest = data.length - whole;
  if (rest > 0) {
    const n = (data[whole]! << 16) | (rest === 2 ? data[whole + 1]! << 8 : 0);
    out[at++] = ALPHABET[n >>> 18]!;
    out[at++] = ALPHABET[(n >>> 12) & 63]!;
    out[at++] = rest === 2 ? ALPHABET[(n >>> 6) & 63]! : PAD;
    out[at++] = PAD;
  }
  return at - start;
}

/**
 * Decodes base64 text held in bytes. Strict: the length must be a multiple
 * of 4, only the alphabet, and at most two '=' at the very end. Returns
 * undefined for anything else (the caller decides what invalid means).
 */
export function base64Decode(text: Uint8Array): Buffer | undefined {
  if (text.length % 4 !== 0) return undefined;
  let pad = 0;
  if (text.length > 0 && text[text.length - 1] === PAD) pad = text[text.length - 2] === PAD ? 2 : 1;
  const out = Buffer.allocUnsafe((text.length / 4) * 3 - pad);
  const whole = text.length - (pad ? 4 : 0);
  let o = 0;
  for (let i = 0; i < whole; i += 4) {
    const a = VALUE[text[i]!]!;
    const b = VALUE[text[i + 1]!]!;
    const c = VALUE[text[i + 2]!]!;
    const d = VALUE[text[i + 3]!]!;
    if ((a | b | c | d) < 0) return undefined;
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = n >>> 16;
    out[o++] = (n >>> 8) & 255;
    out[o++] = n & 255;
  }
  if (pad) {
    const a = VALUE[text[whole]!]!;
    const b = VALUE[text[whole + 1]!]!;
    const c = pad === 1 ? VALUE[text[whole + 2]!]! : 0;
    if ((a | b | c) < 0) return undefined;
    const n = (a << 18) | (b << 12) | (c << 6);
    out[o++] = n >>> 16;
    if (pad === 1) out[o++] = (n >>> 8) & 255;
  }
  return out;
}
