import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand } from '../process/index.js';
import { locateBzImagePayload } from './bzimage.js';
import { extractVmlinux } from './vmlinux.js';

/** A bzImage-shaped file: setup sectors with the boot header, then the payload, as the kernel build lays it out. */
function craftBzImage(payload: Buffer, setupSects = 3, payloadOffsetInProtected = 0x100): Buffer {
  const setupBytes = (setupSects + 1) * 512;
  const image = Buffer.alloc(setupBytes + payloadOffsetInProtected + payload.length + 64);
  image[0x1f1] = setupSects;
  image.write('HdrS', 0x202, 'latin1');
  image.writeUInt16LE(0x020f, 0x206);
  image.writeUInt32LE(payloadOffsetInProtected, 0x248);
  image.writeUInt32LE(payload.length, 0x24c);
  payload.copy(image, setupBytes + payloadOffsetInProtected);
  return image;
}

describe('bzImage payload', () => {
  let dir = '';
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('locates the payload from setup_sects and the header fields', () => {
    const payload = Buffer.concat([Buffer.from([0x02, 0x21, 0x4c, 0x18]), Buffer.from('data')]);
    const found = locateBzImagePayload(craftBzImage(payload, 3, 0x100));
    expect(found).toMatchObject({ offset: 4 * 512 + 0x100, length: 8, format: 'lz4', protocolVersion: 0x020f });
  });

  it('rejects files that are not bzImages, with a clear message', () => {
    expect(() => locateBzImagePayload(Buffer.alloc(4096))).toThrow(/not a bzImage/);
    const bad = craftBzImage(Buffer.from('x'));
    bad.writeUInt32LE(1 << 30, 0x24c);
    expect(() => locateBzImagePayload(bad)).toThrow(/lies outside/);
  });

  it('extracts the ELF from an LZ4 (legacy) payload with the kernel size trailer', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-bz-'));
    const elf = Buffer.concat([Buffer.from('\x7fELF', 'latin1'), Buffer.alloc(200_000, 7), Buffer.from('end')]);
    writeFileSync(join(dir, 'vmlinux.in'), elf);
    await runCommand('lz4', ['-l', '-q', '-f', join(dir, 'vmlinux.in'), join(dir, 'payload')]);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(elf.length);
    const payload = Buffer.concat([readFileSync(join(dir, 'payload')), size]);
    writeFileSync(join(dir, 'vmlinuz'), craftBzImage(payload));
    await extractVmlinux(join(dir, 'vmlinuz'), join(dir, 'vmlinux'), dir);
    expect(Buffer.compare(readFileSync(join(dir, 'vmlinux')), elf)).toBe(0);
  });

  it('refuses a payload whose size trailer does not match', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-bz-'));
    const elf = Buffer.concat([Buffer.from('\x7fELF', 'latin1'), Buffer.alloc(1000, 1)]);
    writeFileSync(join(dir, 'vmlinux.in'), elf);
    await runCommand('lz4', ['-l', '-q', '-f', join(dir, 'vmlinux.in'), join(dir, 'payload')]);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(999);
    writeFileSync(join(dir, 'vmlinuz'), craftBzImage(Buffer.concat([readFileSync(join(dir, 'payload')), size])));
    await expect(extractVmlinux(join(dir, 'vmlinuz'), join(dir, 'vmlinux'), dir)).rejects.toThrow(/the bzImage says 999/);
  });
});
