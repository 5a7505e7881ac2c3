import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { tarBuffer } from '../../testing/oci-fixtures.js';
import { indexTar } from './tar-index.js';

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'tfc-tar-index-'));
});
afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

it('indexes regular members in place, long (pax) names included, later members winning', async () => {
  const long = `${'d'.repeat(120)}/${'f'.repeat(80)}.json`;
  const file = join(work, 'a.tar');
  writeFileSync(
    file,
    tarBuffer([
      { path: './dir/', type: 'Directory' },
      { path: './dir/a', data: 'first' },
      { path: long, data: 'long name' },
      { path: 'link', type: 'SymbolicLink', linkpath: 'dir/a' },
      { path: 'dir/a', data: 'second' },
    ]),
  );
  const index = await indexTar(file);
  expect([...index.keys()].sort()).toEqual([long, 'dir/a'].sort());
  const bytes = readFileSync(file);
  const read = (name: string) => {
    const m = index.get(name)!;
    return bytes.subarray(m.offset, m.offset + m.sizeBytes).toString();
  };
  expect(read(long)).toBe('long name');
  expect(read('dir/a')).toBe('second');
});

it('refuses truncated and non-tar files', async () => {
  const full = tarBuffer([{ path: 'a', data: 'x'.repeat(2000) }]);
  writeFileSync(join(work, 'cut.tar'), full.subarray(0, 1024));
  await expect(indexTar(join(work, 'cut.tar'))).rejects.toThrow(/is truncated/);
  writeFileSync(join(work, 'junk.tar'), Buffer.alloc(1024, 7));
  await expect(indexTar(join(work, 'junk.tar'))).rejects.toThrow(/not a valid tar archive/);
  writeFileSync(join(work, 'empty.tar'), Buffer.alloc(0));
  await expect(indexTar(join(work, 'empty.tar'))).rejects.toThrow(/no entries/);
});
