/**
 * The `debian` image kind: a Debian root filesystem made by mmdebstrap in a
 * directory (Debian's own tool; no debootstrap second stage, no chroot of
 * ours). Docs, man pages and translations are left out through dpkg
 * path-excludes to keep images small. The result is a pure root filesystem:
 * the agent comes from the stage-1 initramfs at boot.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { DebianImageDefinition } from '../../config/index.js';
import { ImageBuildFailedError, TfcError } from '../../errors/index.js';
import { findExecutable, runCommand } from '../../process/index.js';
import type { DebianContents } from '../image-store.js';
import { MAX_DPKG_STATUS_BYTES, parseDpkgStatus } from './dpkg-status.js';
import { FAKE_TIME } from './ext4.js';

/** dpkg path filters (dpkg --path-exclude / --path-include, in this order): copyright files stay. */
export const DPKG_PATH_FILTERS: readonly string[] = [
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-exclude=/usr/share/locale/*',
  'path-exclude=/usr/share/lintian/*',
  'path-exclude=/usr/share/linda/*',
];

const INSTALL_HINT = 'install it with `apt-get install mmdebstrap`';

/** How long one bootstrap may take before it is killed (slow mirrors, big package sets). */
export const MMDEBSTRAP_TIMEOUT_MS = 30 * 60_000;

/**
 * mmdebstrap's argv for `def` into `outDir` (which must not exist or be
 * empty), `--mode=root`. Packages are sorted and deduplicated so their
 * order in the config does not matter.
 *
 * Why not `--mode=unshare` for other users: its directory output is owned by
 * subordinate uids (100000 + N), and mke2fs -d copies owners as they are on
 * disk, so the guest would see /usr owned by uid 100000. Until packing
 * happens inside mmdebstrap's user namespace, Debian images need root.
 */
export function mmdebstrapArgs(def: Pick<DebianImageDefinition, 'suite' | 'variant' | 'packages' | 'mirror'>, outDir: string, debCacheDir?: string): string[] {
  const args = ['--mode=root', `--variant=${def.variant}`, '--quiet'];
  const packages = [...new Set(def.packages)].sort();
  if (packages.length > 0) args.push(`--include=${packages.join(',')}`);
  for (const filter of DPKG_PATH_FILTERS) args.push(`--dpkgopt=${filter}`);
  args.push('--aptopt=Acquire::Languages "none"');
  if (debCacheDir !== undefined && usableCacheDir(debCacheDir)) {
    // Downloaded .debs are kept between builds (apt checks each one against
    // the index, so a stale file is downloaded again). sync-in/sync-out are
    // mmdebstrap's own hook commands, not shell; the image itself keeps no
    // .debs (mmdebstrap's cleanup empties the archive afterwards).
    // The caller creates OUT/var/cache/apt/archives, hence check/empty.
    args.push(
      '--skip=check/empty',
      '--skip=download/empty',
      '--skip=essential/unlink',
      `--setup-hook=sync-in ${debCacheDir} /var/cache/apt/archives/`,
      `--customize-hook=sync-out /var/cache/apt/archives ${debCacheDir}`,
    );
  }
  args.push(def.suite, outDir, def.mirror);
  return args;
}

/** mmdebstrap splits special hooks at whitespace: a cache path with any cannot be passed. */
function usableCacheDir(dir: string): boolean {
  return isAbsolute(dir) && !/\s/.test(dir);
}

/** `mmdebstrap --version` ("mmdebstrap 1.3.5" -> "1.3.5"). Throws ImageBuildFailedError saying how to install it. */
export async function mmdebstrapVersion(): Promise<string> {
  if (!findExecutable('mmdebstrap')) {
    throw new ImageBuildFailedError(`mmdebstrap not found: building a debian image needs it; ${INSTALL_HINT}`);
  }
  const out = (await runCommand('mmdebstrap', ['--version'], { timeoutMs: 30_000, hint: INSTALL_HINT })).stdout.toString().trim();
  const version = /([0-9][0-9A-Za-z.+~-]*)\s*$/.exec(out)?.[1];
  if (!version) throw new ImageBuildFailedError(`cannot read the version of mmdebstrap from ${JSON.stringify(out.slice(0, 200))}; ${INSTALL_HINT}`);
  return version;
}

/**
 * Runs mmdebstrap into `outDir`. Throws ImageBuildFailedError when it is
 * missing or fails, with its last messages and the likely fixes (package
 * names, mirror reachability).
 */
export async function bootstrapDebian(def: DebianImageDefinition, outDir: string, options: { debCacheDir?: string; signal?: AbortSignal } = {}): Promise<void> {
  if (!findExecutable('mmdebstrap')) throw new ImageBuildFailedError(`mmdebstrap not found; ${INSTALL_HINT}`);
  if (process.getuid?.() !== 0) {
    throw new ImageBuildFailedError(
      `building the debian image "${def.name}" needs root (mmdebstrap --mode=root: the files in the image must be owned by their real uids); run \`sudo tfc image build ${def.name}\``,
    );
  }
  const cache = options.debCacheDir !== undefined && usableCacheDir(options.debCacheDir) ? options.debCacheDir : undefined;
  if (cache !== undefined) {
    mkdirSync(cache, { recursive: true });
    mkdirSync(join(outDir, 'var/cache/apt/archives'), { recursive: true });
  }
  try {
    await runCommand('mmdebstrap', mmdebstrapArgs(def, outDir, cache), {
      // SOURCE_DATE_EPOCH makes mmdebstrap clamp what it can (reproducible output where the packages allow).
      env: { ...process.env, SOURCE_DATE_EPOCH: String(FAKE_TIME), LC_ALL: 'C.UTF-8' },
      timeoutMs: MMDEBSTRAP_TIMEOUT_MS,
      signal: options.signal,
    });
  } catch (err) {
    const why = err instanceof TfcError ? err.message : String(err);
    throw new ImageBuildFailedError(
      `mmdebstrap could not build image "${def.name}" (${def.suite}, ${def.variant}, packages ${def.packages.join(' ') || 'none'}): ${why}; ` +
        `check the package names in images.${def.name}.packages (\`apt-cache policy NAME\`) and that ${def.mirror} is reachable`,
      { cause: err },
    );
  }
}

/** The manifest's `contents` of a bootstrapped tree: what was asked and what dpkg says is installed. */
export function debianContents(root: string, def: DebianImageDefinition, mmdebstrap: string): DebianContents {
  const statusPath = join(root, 'var/lib/dpkg/status');
  let text = '';
  try {
    if (statSync(statusPath).size <= MAX_DPKG_STATUS_BYTES) text = readFileSync(statusPath, 'utf8');
  } catch {
    // no dpkg database (variant extract/custom): no package list
  }
  return {
    kind: 'debian',
    suite: def.suite,
    variant: def.variant,
    mirror: def.mirror,
    requested: [...def.packages],
    mmdebstrap_version: mmdebstrap,
    packages: parseDpkgStatus(text),
  };
}
