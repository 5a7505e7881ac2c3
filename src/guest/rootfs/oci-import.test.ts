import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from 'tar';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasCode } from '../../errors/index.js';
import { packLayout, putBlob, sha256, tarBuffer, writeDockerArchive, writeOciLayout, type FixtureEntry } from '../../testing/oci-fixtures.js';
import { importOciImage, ociSourceDigest } from './oci-import.js';

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'tfc-oci-'));
});
afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

const LOWER: FixtureEntry[] = [
  { path: 'etc/', type: 'Directory' },
  { path: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n' },
  { path: 'etc/old.conf', data: 'old' },
  { path: 'opt/', type: 'Directory' },
  { path: 'opt/cache/', type: 'Directory', mode: 0o700 },
  { path: 'opt/cache/a', data: 'a' },
  { path: 'opt/cache/sub/', type: 'Directory' },
  { path: 'opt/cache/sub/b', data: 'b' },
  { path: 'app/', type: 'Directory' },
  { path: 'app/config', data: 'v1' },
  { path: 'bin/', type: 'Directory' },
  { path: 'bin/tool', data: '#!/bin/sh\necho tool\n', mode: 0o4755, uid: 1000, gid: 1001 },
  { path: 'bin/tool-hard', type: 'Link', linkpath: 'bin/tool' },
  { path: 'bin/sh', type: 'SymbolicLink', linkpath: 'busybox' },
  { path: 'gone/', type: 'Directory' },
  { path: 'gone/x', data: 'x' },
  { path: 'dev/', type: 'Directory' },
  { path: 'dev/null', type: 'CharacterDevice', mode: 0o666 },
  { path: 'run/', type: 'Directory' },
  { path: 'run/fifo', type: 'FIFO' },
];

const UPPER: FixtureEntry[] = [
  { path: 'etc/.wh.old.conf' },
  { path: '.wh.gone' },
  // The opaque marker comes after an entry of the same layer in that directory: that entry stays.
  { path: 'opt/cache/new', data: 'new' },
  { path: 'opt/cache/.wh..wh..opq' },
  { path: 'app/config', data: 'v2', mode: 0o600 },
  { path: 'usr/lib/libx.so.1', data: 'elf' },
  { path: 'usr/lib/libx.so', type: 'SymbolicLink', linkpath: 'libx.so.1' },
  { path: 'var/log/', type: 'Directory', mode: 0o750 },
];

/** The tree under `root` as "path: kind mode owner detail" lines. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, p));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`${p}: l -> ${readlinkSync(join(root, p))}`);
      else if (st.isDirectory()) {
        out.push(`${p}: d ${mode} ${st.uid}:${st.gid}`);
        walk(p);
      } else out.push(`${p}: f ${mode} ${st.uid}:${st.gid} ${JSON.stringify(readFileSync(join(root, p), 'utf8'))} links=${st.nlink}`);
    }
  };
  walk('');
  return out;
}

// Owners are kept when running as root (as the builder does); otherwise files belong to us.
const asRoot = process.getuid?.() === 0;
const own = (uid: number, gid: number) => (asRoot ? `${uid}:${gid}` : `${process.getuid?.()}:${process.getgid?.()}`);
const EXPECTED = [
  `app: d 755 ${own(0, 0)}`,
  `app/config: f 600 ${own(0, 0)} "v2" links=1`,
  `bin: d 755 ${own(0, 0)}`,
  'bin/sh: l -> busybox',
  `bin/tool: f 4755 ${own(1000, 1001)} "#!/bin/sh\\necho tool\\n" links=2`,
  `bin/tool-hard: f 4755 ${own(1000, 1001)} "#!/bin/sh\\necho tool\\n" links=2`,
  `dev: d 755 ${own(0, 0)}`,
  `etc: d 755 ${own(0, 0)}`,
  `etc/passwd: f 644 ${own(0, 0)} "root:x:0:0::/root:/bin/sh\\n" links=1`,
  `opt: d 755 ${own(0, 0)}`,
  `opt/cache: d 700 ${own(0, 0)}`,
  `opt/cache/new: f 644 ${own(0, 0)} "new" links=1`,
  `run: d 755 ${own(0, 0)}`,
  `usr: d 755 ${own(0, 0)}`,
  `usr/lib: d 755 ${own(0, 0)}`,
  'usr/lib/libx.so: l -> libx.so.1',
  `usr/lib/libx.so.1: f 644 ${own(0, 0)} "elf" links=1`,
  `var: d 755 ${own(0, 0)}`,
  `var/log: d 750 ${own(0, 0)}`,
];

const twoLayers = () => [{ refs: ['app:latest'], layers: [tarBuffer(LOWER), tarBuffer(UPPER)] }];

describe('importOciImage', () => {
  it('applies two gzip layers of an OCI layout with whiteouts, an opaque dir, links and modes', async () => {
    const layout = join(work, 'layout');
    const [manifestDigest] = writeOciLayout(layout, twoLayers());
    const dest = join(work, 'root');
    const seen: number[] = [];
    const res = await importOciImage(layout, dest, { onLayer: (l) => seen.push(l.index * 10 + l.total) });
    expect(tree(dest)).toEqual(EXPECTED);
    expect(lstatSync(join(dest, 'bin/tool')).ino).toBe(lstatSync(join(dest, 'bin/tool-hard')).ino);
    expect(lstatSync(join(dest, 'etc/passwd')).mtime.toISOString()).toBe('2024-01-02T03:04:05.000Z');
    expect(lstatSync(join(dest, 'opt/cache')).mtime.toISOString()).toBe('2024-01-02T03:04:05.000Z');
    expect(seen).toEqual([2, 12]);
    expect(res.format).toBe('oci-layout');
    expect(res.manifestDigest).toBe(manifestDigest);
    expect(res.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+gzip']);
    expect(res.config).toEqual({ env: ['PATH=/usr/bin:/bin', 'APP=1'], entrypoint: ['/bin/app'], cmd: ['--serve'], workingDir: '/srv', user: 'app' });
    expect(res.stats).toMatchObject({ symlinks: 2, hardlinks: 1, whiteouts: 3 });
    expect(res.stats.files).toBe(10);
    expect(res.stats.skipped).toEqual([
      { path: 'dev/null', reason: 'character device (the guest has devtmpfs)' },
      { path: 'run/fifo', reason: 'fifo' },
    ]);
  });

  it('gives the same tree from a docker save archive', async () => {
    const archive = join(work, 'app.tar');
    writeDockerArchive(archive, twoLayers());
    const res = await importOciImage(archive, join(work, 'root'));
    expect(res.format).toBe('docker-archive');
    expect(res.layers.map((l) => l.digest)).toEqual([sha256(tarBuffer(LOWER)), sha256(tarBuffer(UPPER))]);
    expect(res.config.entrypoint).toEqual(['/bin/app']);
    expect(tree(join(work, 'root'))).toEqual(EXPECTED);
  });

  it('gives the same tree from an OCI layout packed as a tar, with uncompressed layers', async () => {
    writeOciLayout(join(work, 'layout'), [{ layers: [tarBuffer(LOWER), tarBuffer(UPPER)], gzip: false }]);
    await packLayout(join(work, 'layout'), join(work, 'layout.tar'));
    const res = await importOciImage(join(work, 'layout.tar'), join(work, 'root'));
    expect(res.format).toBe('oci-layout');
    expect(tree(join(work, 'root'))).toEqual(EXPECTED);
  });

  it('keeps entries of the same layer that come before its whiteouts and opaque markers', async () => {
    const lower: FixtureEntry[] = [
      { path: 'd/old', data: 'lower' },
      { path: 'f', data: 'lower' },
      { path: 'o/sub/x', data: 'lower' },
      { path: 'o/top', data: 'lower' },
    ];
    const upper: FixtureEntry[] = [
      { path: 'd/new', data: 'upper' },
      { path: '.wh.d' },
      { path: 'f', data: 'upper' },
      { path: '.wh.f' },
      { path: 'o/sub/y', data: 'upper' },
      { path: 'o/.wh..wh..opq' },
    ];
    writeOciLayout(join(work, 'layout'), [{ layers: [tarBuffer(lower), tarBuffer(upper)] }]);
    await importOciImage(join(work, 'layout'), join(work, 'root'));
    expect(tree(join(work, 'root')).map((l) => l.replace(/: [fd] .*?( "[a-z]+")?( links=1)?$/, '$1'))).toEqual([
      'd',
      'd/new "upper"',
      'f "upper"',
      'o',
      'o/sub',
      'o/sub/y "upper"',
    ]);
  });

  it('reads a Docker >= 25 save archive (OCI layout and manifest.json side by side) by its containerd name', async () => {
    const layout = join(work, 'layout');
    const [digest] = writeOciLayout(layout, [{ layers: [tarBuffer([{ path: 'hello', data: 'hi' }])], gzip: false }]);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    index.manifests[0].annotations = { 'io.containerd.image.name': 'docker.io/library/myapp:latest', 'org.opencontainers.image.ref.name': 'latest' };
    writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
    writeFileSync(join(layout, 'manifest.json'), JSON.stringify([{ Config: 'blobs/sha256/0', RepoTags: ['myapp:latest'], Layers: [] }]));
    await create({ file: join(work, 'app.tar'), cwd: layout }, ['manifest.json', 'oci-layout', 'index.json', 'blobs']);
    const res = await importOciImage(join(work, 'app.tar'), join(work, 'root'), { ref: 'myapp' });
    expect(res).toMatchObject({ format: 'oci-layout', manifestDigest: digest });
    expect(readFileSync(join(work, 'root/hello'), 'utf8')).toBe('hi');
    await expect(ociSourceDigest(join(work, 'app.tar'), { ref: 'docker.io/library/myapp:latest' })).resolves.toMatch(/^sha256:/);
    await expect(ociSourceDigest(join(work, 'app.tar'), { ref: 'other' })).rejects.toThrow(/it holds: docker\.io\/library\/myapp:latest/);

    // Without the OCI files, manifest.json alone (blob-named members) is read as a docker save archive.
    const manifest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', digest!.slice(7)), 'utf8'));
    const entry = {
      Config: `blobs/sha256/${manifest.config.digest.slice(7)}`,
      RepoTags: ['myapp:latest'],
      Layers: manifest.layers.map((l: { digest: string }) => `blobs/sha256/${l.digest.slice(7)}`),
    };
    writeFileSync(join(layout, 'manifest.json'), JSON.stringify([entry]));
    await create({ file: join(work, 'legacy.tar'), cwd: layout }, ['manifest.json', 'blobs']);
    const legacy = await importOciImage(join(work, 'legacy.tar'), join(work, 'root2'));
    expect(legacy).toMatchObject({ format: 'docker-archive', layers: [{ digest: manifest.layers[0].digest }] });
    expect(readFileSync(join(work, 'root2/hello'), 'utf8')).toBe('hi');
  });

  it('refuses a blob whose content does not match its digest, naming it, and leaves nothing behind', async () => {
    const layout = join(work, 'layout');
    writeOciLayout(layout, [{ layers: [tarBuffer([{ path: 'f', data: 'hello' }])], gzip: false }]);
    const manifest = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].digest as string;
    const layerDigest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', manifest.slice(7)), 'utf8')).layers[0].digest as string;
    const blob = join(layout, 'blobs/sha256', layerDigest.slice(7));
    writeFileSync(blob, readFileSync(blob).toString('latin1').replace('hello', 'HELLO'), 'latin1');
    const dest = join(work, 'root');
    const err = await importOciImage(layout, dest).catch((e: unknown) => e);
    expect(hasCode(err, 'IMAGE_BUILD_FAILED')).toBe(true);
    expect((err as Error).message).toContain(`blob ${layerDigest} is corrupted`);
    expect(existsSync(dest)).toBe(false);
  });

  it('refuses a corrupted config blob', async () => {
    const layout = join(work, 'layout');
    writeOciLayout(layout, [{ layers: [tarBuffer([{ path: 'f' }])] }]);
    const manifest = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].digest as string;
    const configDigest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', manifest.slice(7)), 'utf8')).config.digest as string;
    const config = join(layout, 'blobs/sha256', configDigest.slice(7));
    writeFileSync(config, readFileSync(config, 'utf8').replace('APP=1', 'APP=2'));
    await expect(importOciImage(layout, join(work, 'root'))).rejects.toThrow(`blob ${configDigest} is corrupted`);
  });

  it('refuses a docker save layer that does not match its diff_id', async () => {
    const archive = join(work, 'app.tar');
    writeDockerArchive(archive, [{ layers: [tarBuffer([{ path: 'f', data: 'hello' }])] }]);
    const bytes = readFileSync(archive);
    const at = bytes.indexOf('hello');
    bytes.write('HELLO', at, 'latin1');
    writeFileSync(archive, bytes);
    await expect(importOciImage(archive, join(work, 'root'))).rejects.toThrow(/layer .*layer\.tar is corrupted/);
  });

  it('stops at maxUnpackedBytes with an error naming the limit', async () => {
    const layout = join(work, 'layout');
    writeOciLayout(layout, [{ layers: [tarBuffer([{ path: 'big', data: Buffer.alloc(300_000, 1) }])] }]);
    const dest = join(work, 'root');
    await expect(importOciImage(layout, dest, { maxUnpackedBytes: 100_000 })).rejects.toThrow(/more than 100000 bytes \(maxUnpackedBytes\)/);
    expect(existsSync(dest)).toBe(false);
    await expect(importOciImage(layout, dest, { maxUnpackedBytes: 300_000 })).resolves.toMatchObject({ stats: { files: 1 } });
  });

  it('needs a ref when the input holds several images, and picks the named one', async () => {
    const images = [
      { refs: ['app:1'], layers: [tarBuffer([{ path: 'which', data: 'app' }])] },
      { refs: ['tool:latest'], layers: [tarBuffer([{ path: 'which', data: 'tool' }])] },
    ];
    const layout = join(work, 'layout');
    writeOciLayout(layout, images);
    const archive = join(work, 'two.tar');
    writeDockerArchive(archive, images);
    for (const src of [layout, archive]) {
      await expect(importOciImage(src, join(work, 'r0'))).rejects.toThrow(/several images \(app:1, tool:latest\)/);
      await expect(importOciImage(src, join(work, 'r0'), { ref: 'nope' })).rejects.toThrow(/no image named nope; it holds: app:1, tool:latest/);
      const dest = join(work, `r-${src === layout ? 'oci' : 'docker'}`);
      await importOciImage(src, dest, { ref: 'tool' });
      expect(readFileSync(join(dest, 'which'), 'utf8')).toBe('tool');
    }
  });

  it('follows an image index to its linux/amd64 manifest', async () => {
    const layout = join(work, 'layout');
    const [amd64] = writeOciLayout(layout, [{ layers: [tarBuffer([{ path: 'arch', data: 'amd64' }])] }]);
    const manifestSize = readFileSync(join(layout, 'blobs/sha256', amd64!.slice(7))).length;
    const child = (arch: string, digest: string) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest,
      size: manifestSize,
      platform: { os: 'linux', architecture: arch },
    });
    const fake = sha256('not stored');
    const inner = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [child('arm64', fake), child('amd64', amd64!)] }));
    const innerDigest = putBlob(layout, inner);
    const top = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: innerDigest, size: inner.length };
    writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [top] }));
    const res = await importOciImage(layout, join(work, 'root'));
    expect(res.manifestDigest).toBe(amd64);
    expect(readFileSync(join(work, 'root/arch'), 'utf8')).toBe('amd64');

    // index.json itself may list one manifest per platform.
    writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [child('arm64', fake), child('amd64', amd64!)] }));
    expect((await importOciImage(layout, join(work, 'root2'))).manifestDigest).toBe(amd64);

    const armOnly = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [child('arm64', fake)] }));
    writeFileSync(
      join(layout, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, digest: putBlob(layout, armOnly), size: armOnly.length }] }),
    );
    await expect(ociSourceDigest(layout)).rejects.toThrow(/no linux\/amd64 variant \(it has: linux\/arm64\)/);
  });

  it('says how to make an input when the path is not an image', async () => {
    await expect(importOciImage(work, join(work, 'root'))).rejects.toThrow(/neither an OCI image layout.*docker save IMAGE -o app\.tar/);
    writeFileSync(join(work, 'x.tar.gz'), Buffer.from([0x1f, 0x8b, 8, 0, ...Buffer.alloc(600)]));
    await expect(importOciImage(join(work, 'x.tar.gz'), join(work, 'root'))).rejects.toThrow(/gzip-compressed; decompress it first/);
    await expect(importOciImage(join(work, 'missing'), join(work, 'root'))).rejects.toThrow(/does not exist/);
  });

  it('refuses zstd layers and non-amd64 images with a fix', async () => {
    writeOciLayout(join(work, 'z'), [{ layers: [tarBuffer([{ path: 'f' }])], layerMediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }]);
    await expect(importOciImage(join(work, 'z'), join(work, 'root'))).rejects.toThrow(/zstd-compressed.*gzip/);
    writeOciLayout(join(work, 'arm'), [{ layers: [tarBuffer([{ path: 'f' }])], config: { architecture: 'arm64' } }]);
    await expect(importOciImage(join(work, 'arm'), join(work, 'root'))).rejects.toThrow(/arm64.*--platform linux\/amd64/);
  });

  it('refuses a destination that is not empty', async () => {
    writeOciLayout(join(work, 'layout'), twoLayers());
    writeFileSync(join(work, 'root-file'), '');
    await expect(importOciImage(join(work, 'layout'), work)).rejects.toThrow(/is not empty/);
  });
});

describe('ociSourceDigest', () => {
  it('is stable for the same input and changes when a layer changes', async () => {
    const a = join(work, 'a');
    writeOciLayout(a, twoLayers());
    const d1 = await ociSourceDigest(a);
    expect(d1).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(await ociSourceDigest(a)).toBe(d1);
    const b = join(work, 'b');
    writeOciLayout(b, twoLayers());
    expect(await ociSourceDigest(b)).toBe(d1);
    await packLayout(a, join(work, 'a.tar'));
    expect(await ociSourceDigest(join(work, 'a.tar'))).toBe(d1);

    const c = join(work, 'c');
    writeOciLayout(c, [{ refs: ['app:latest'], layers: [tarBuffer(LOWER), tarBuffer([...UPPER, { path: 'extra', data: '1' }])] }]);
    expect(await ociSourceDigest(c)).not.toBe(d1);

    const d = join(work, 'd.tar');
    writeDockerArchive(d, twoLayers());
    const dd = await ociSourceDigest(d);
    expect(await ociSourceDigest(d)).toBe(dd);
    writeDockerArchive(d, [{ layers: [tarBuffer(LOWER), tarBuffer([{ path: 'other', data: '2' }])] }]);
    expect(await ociSourceDigest(d)).not.toBe(dd);
  });
});
