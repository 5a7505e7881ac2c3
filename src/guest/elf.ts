/** True when `buf` is an ELF executable without a program interpreter (i.e. statically linked). */
export function isStaticElf(buf: Buffer): boolean {
  if (buf.length < 64 || buf[0] !== 0x7f || buf.toString('latin1', 1, 4) !== 'ELF' || buf[4] !== 2) return false;
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > buf.length) return false;
    if (buf.readUInt32LE(at) === 3 /* PT_INTERP */) return false;
  }
  return true;
}
