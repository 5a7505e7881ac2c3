import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DebianImageDefinition, OciImageDefinition } from '../config/index.js';
import { findExecutable } from '../process/index.js';
import { dataLayout, type DataLayout } from '../store/layout.js';
import { buildFakeKernelDeb, writeFakeApt } from '../testing/fake-kernel-package.js';
import { tarBuffer, writeOciLayout } from '../testing/oci-fixtures.js';
import { buildImage, imageKey, type BuildProgress } from './image-builder.js';
import { resolveImage } from './image-store.js';
import { rootfsCacheDir, rootfsCacheKey } from './rootfs/rootfs-build.js';

// Images with a root filesystem, offline: the fake kernel package and apt
// stand-ins for the boot files, an OCI layout written by the test, and a
// stand-in mmdebstrap that lays out a tiny tree with a dpkg status file.
// mke2fs and debugfs are the real ones.

const TOOLS = ['busybox', 'gcc', 'lz4', 'dpkg-deb', 'cpio', 'mke2fs', 'debugfs'];
const missing = TOOLS.filter((t) => !findExecutable(t));
if (missing.length) console.warn(`rootfs image build tests skipped: ${missing.join(', ')} not installed`);
const BUSYBOX = findExecutable('busybox') ?? '/bin/busybox';
const TIMEOUT_MS = 240_000;

/** `debugfs -R CMD file` output (debugfs prints its banner on stderr). */
function debugfs(file: string, cmd: string): string {
  return execFileSync('debugfs', ['-R', cmd, file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
}

const MMDEBSTRAP = `#!/bin/sh
# Stand-in for mmdebstrap: the target is the second-to-last argument.
for a in "$@"; do prev2=$prev1; prev1=$a; done
[ "$1" = "--version" ] && { echo "mmdebstrap 9.9.9"; exit 0; }
out=$prev2
mkdir -p "$out/usr/bin" "$out/var/lib/dpkg" "$out/tmp" "$out/etc"
printf '#!/bin/sh\\necho fake python\\n' > "$out/usr/bin/python3"
chmod 755 "$out/usr/bin/python3"
printf 'Package: python3\\nStatus: install ok installed\\nArchitecture: amd64\\nVersion: 3.11.2-1+b1\\n\\nPackage: base-files\\nStatus: install ok installed\\nArchitecture: amd64\\nVersion: 12.4\\n' > "$out/var/lib/dpkg/status"
echo "$@" >> "${'$'}{FAKE_MMDEBSTRAP_LOG:-/dev/null}"
`;

describe.skipIf(missing.length > 0)('buildImage with a root filesystem', () => {
  let dir: string;
  let layout: DataLayout;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-rootfs-build-'));
    const deb = await buildFakeKernelDeb(join(dir, 'pkg-work'));
    writeFakeApt(join(dir, 'bin'), { version: deb.version, sha256: deb.sha256, downloadFrom: deb.debPath });
    writeFileSync(join(dir, 'bin', 'mmdebstrap'), MMDEBSTRAP);
    chmodSync(join(dir, 'bin', 'mmdebstrap'), 0o755);
  }, TIMEOUT_MS);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    vi.stubEnv('PATH', `${join(dir, 'bin')}:${process.env.PATH}`);
    layout = dataLayout(mkdtempSync(join(dir, 'data-')));
  });
  afterEach(() => vi.unstubAllEnvs());

  const ociLayout = (): string => {
    const path = mkdtempSync(join(dir, 'oci-'));
    writeOciLayout(path, [
      {
        refs: ['latest'],
        layers: [
          tarBuffer([
            { path: 'bin/', type: 'Directory' },
            { path: 'bin/app', data: '#!/bin/sh\necho app\n', mode: 0o755 },
            { path: 'etc/', type: 'Directory' },
            { path: 'etc/old.conf', data: 'old' },
          ]),
          tarBuffer([
            { path: 'etc/', type: 'Directory' },
            { path: 'etc/.wh.old.conf', data: '' },
            { path: 'etc/new.conf', data: 'new' },
          ]),
        ],
      },
    ]);
    return path;
  };

  it(
    'oci: two layers and a whiteout become an ext4 rootfs beside the shared kernel and initramfs; a rebuild is a hit',
    async () => {
      const source = ociLayout();
      const definition: OciImageDefinition = { name: 'app', kind: 'oci', source, ref: 'latest', extraMib: 8 };
      const details: string[] = [];
      const progress: BuildProgress = { step: () => undefined, stepDone: () => undefined, detail: (t) => details.push(t) };
      const first = await buildImage(layout, { name: 'app', kernelPackage: 'auto', busyboxPath: BUSYBOX, definition }, progress);
      expect(first.cacheHit).toBe(false);
      expect(first.steps.map((s) => s.name)).toEqual([
        'resolve kernel package',
        'resolve rootfs inputs',
        'check cache',
        'download kernel package',
        'extract kernel package',
        'extract vmlinux',
        'resolve kernel modules',
        'build guest agent',
        'assemble initramfs',
        'store kernel and initramfs',
        'import oci image',
        'pack ext4',
        'write manifest',
      ]);
      expect(details).toEqual([expect.stringMatching(/^layer 1\/2 sha256:[0-9a-f]{12} /), expect.stringMatching(/^layer 2\/2 sha256:/)]);
      const m = first.image.manifest;
      expect(m).toMatchObject({ schema: 2, kind: 'oci', name: 'app', contents: { kind: 'oci', format: 'oci-layout', ref: 'latest', source } });
      expect(m.contents?.kind === 'oci' && m.contents.layers).toHaveLength(2);
      expect(m.contents?.kind === 'oci' && m.contents.config.entrypoint).toEqual(['/bin/app']);
      const rootfs = first.image.rootfsPath!;
      expect(rootfs).toBe(join(first.image.dir, 'rootfs.ext4'));
      const etc = debugfs(rootfs, 'ls -l /etc');
      expect(etc).toContain('new.conf');
      expect(etc).not.toContain('old.conf');
      expect(debugfs(rootfs, 'stat /bin/app')).toMatch(/Mode: +0755/);
      expect(debugfs(rootfs, 'ls /')).toContain('.tfc');
      // The kernel and initramfs are the minimal build's (hard links, same digests).
      const minimal = readdirSync(layout.images).find((d) => d.startsWith('minimal-'))!;
      expect(statSync(join(layout.images, minimal, 'vmlinux')).ino).toBe(statSync(first.image.kernelPath).ino);
      expect(existsSync(join(layout.imageRefs, 'minimal'))).toBe(false);
      expect(resolveImage(layout, 'app').dir).toBe(first.image.dir);

      const again = await buildImage(layout, { name: 'app', kernelPackage: 'auto', busyboxPath: BUSYBOX, definition });
      expect(again.cacheHit).toBe(true);
      expect(again.steps.map((s) => s.name)).toEqual(['resolve kernel package', 'resolve rootfs inputs', 'check cache']);
      expect(again.image.manifest.digest).toBe(m.digest);

      // More free space: a new rootfs (new key), the boot files reused.
      const bigger = await buildImage(layout, { name: 'app', kernelPackage: 'auto', busyboxPath: BUSYBOX, definition: { ...definition, extraMib: 16 } });
      expect(bigger.cacheHit).toBe(false);
      expect(bigger.steps.map((s) => s.name)).toEqual([
        'resolve kernel package',
        'resolve rootfs inputs',
        'check cache',
        'import oci image',
        'pack ext4',
        'write manifest',
      ]);
      expect(bigger.image.manifest.files.rootfs!.sizeBytes).toBeGreaterThan(m.files.rootfs!.sizeBytes);
      expect(bigger.image.manifest.files.vmlinux).toEqual(m.files.vmlinux);
      expect(readdirSync(layout.tmp)).toEqual([]);
    },
    TIMEOUT_MS,
  );

  it.skipIf(process.getuid?.() !== 0)(
    "debian: mmdebstrap fills the tree, the manifest lists dpkg's packages; two concurrent builds both succeed",
    async () => {
      const log = join(dir, 'mmdebstrap.log');
      vi.stubEnv('FAKE_MMDEBSTRAP_LOG', log);
      const definition: DebianImageDefinition = {
        name: 'py',
        kind: 'debian',
        suite: 'bookworm',
        variant: 'minbase',
        packages: ['python3'],
        mirror: 'http://deb.debian.org/debian',
        extraMib: 4,
      };
      const options = { name: 'py', kernelPackage: 'auto', busyboxPath: BUSYBOX, definition };
      const [a, b] = await Promise.all([buildImage(layout, options), buildImage(layout, options)]);
      expect(a.image.manifest.key).toBe(b.image.manifest.key);
      const image = resolveImage(layout, 'py');
      expect(image.manifest.contents).toMatchObject({
        kind: 'debian',
        suite: 'bookworm',
        mmdebstrap_version: '9.9.9',
        packages: [
          { name: 'base-files', version: '12.4', architecture: 'amd64' },
          { name: 'python3', version: '3.11.2-1+b1', architecture: 'amd64' },
        ],
      });
      expect(debugfs(image.rootfsPath!, 'stat /usr/bin/python3')).toMatch(/Type: regular +Mode: +0755/);
      // The deb cache directory is handed to mmdebstrap.
      expect(execFileSync('cat', [log]).toString()).toContain(`sync-in ${join(layout.debCache, 'mmdebstrap')} /var/cache/apt/archives/`);
      expect(readdirSync(rootfsCacheDir(layout))).toHaveLength(1);

      // The key follows the inputs, not their order.
      const inputs = { kind: 'debian', packages: ['a'] };
      expect(rootfsCacheKey(definition, inputs)).toBe(rootfsCacheKey({ ...definition }, { ...inputs }));
      expect(rootfsCacheKey(definition, inputs)).not.toBe(rootfsCacheKey({ ...definition, extraMib: 5 }, inputs));
      expect(imageKey(definition, 'b1', 'r1')).not.toBe(imageKey(definition, 'b2', 'r1'));
      expect(imageKey(definition, 'b1', 'r1')).not.toBe(imageKey(definition, 'b1', 'r2'));

      // --force rebuilds the rootfs (a new mmdebstrap run), keeping one cached copy per key.
      const runs = execFileSync('cat', [log]).toString().trim().split('\n').length;
      const forced = await buildImage(layout, { ...options, force: true });
      expect(forced.cacheHit).toBe(false);
      expect(execFileSync('cat', [log]).toString().trim().split('\n').length).toBe(runs + 1);
      expect(readdirSync(rootfsCacheDir(layout))).toHaveLength(1);
    },
    TIMEOUT_MS,
  );

  it('a bad oci source fails before anything is built, naming the path', async () => {
    const definition: OciImageDefinition = { name: 'bad', kind: 'oci', source: join(dir, 'no-such-layout'), ref: '', extraMib: 8 };
    await expect(buildImage(layout, { name: 'bad', kernelPackage: 'auto', busyboxPath: BUSYBOX, definition })).rejects.toThrow(/no-such-layout/);
    expect(existsSync(layout.images)).toBe(false);
    mkdirSync(layout.tmp, { recursive: true });
    expect(readdirSync(layout.tmp)).toEqual([]);
  });
});
