import { describe, expect, it } from 'vitest';
import { indexKeyLines } from './toml-lines.js';

const text = [
  '# top comment', // 1
  'data_dir = "/x" # trailing', // 2
  '', // 3
  '[vmm]', // 4
  'default_driver = "qemu"', // 5
  '  [ vmm . "qemu" ]  # spaced header', // 6
  'binary = """', // 7
  'accel = "not a key, inside a string"', // 8
  '"""', // 9
  "'accel' = 'kvm'", // 10
  '[profiles.dev]', // 11
  'kernel_args = "a = b # not a comment"', // 12
  'vcpus = 2', // 13
  '[[arr]]', // 14
  'x.y = 1', // 15
].join('\n');

describe('indexKeyLines', () => {
  const lines = indexKeyLines(text);

  it('finds keys under table headers, quoted and spaced', () => {
    expect(lines.lineOf(['data_dir'])).toBe(2);
    expect(lines.lineOf(['vmm', 'default_driver'])).toBe(5);
    expect(lines.lineOf(['vmm', 'qemu', 'binary'])).toBe(7);
    expect(lines.lineOf(['vmm', 'qemu', 'accel'])).toBe(10);
    expect(lines.lineOf(['profiles', 'dev', 'vcpus'])).toBe(13);
    expect(lines.lineOf(['arr', 'x', 'y'])).toBe(15);
  });

  it('finds tables by header, or by their first key when they have none', () => {
    expect(lines.lineOf(['vmm'])).toBe(4);
    expect(lines.lineOf(['profiles', 'dev'])).toBe(11);
    expect(lines.lineOf(['profiles'])).toBe(11);
  });

  it('falls back to the nearest ancestor, and gives up at the root', () => {
    expect(lines.lineOf(['profiles', 'dev', 'image'])).toBe(11);
    expect(lines.lineOf(['images', 'kernel_package'])).toBeUndefined();
  });

  it('handles CRLF and literal multi-line strings', () => {
    const crlf = indexKeyLines("a = '''\r\nb = 1\r\n'''\r\nc = 2\r\n");
    expect(crlf.lineOf(['c'])).toBe(4);
    expect(crlf.lineOf(['b'])).toBeUndefined();
  });

  it('never throws on garbage', () => {
    expect(() => indexKeyLines('[unterminated\n"x = \n= 1\n[[\n').lineOf(['x'])).not.toThrow();
  });
});
