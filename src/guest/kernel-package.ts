import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { ImageBuildFailedError } from '../errors/index.js';
import { runCommand } from '../process/index.js';

/** The Debian kernel package an image is built from. */
export interface KernelPackage {
  name: string;
  version: string;
  /** SHA256 of the .deb as published in the apt index. */
  sha256: string;
}

const PACKAGE_NAME = /^linux-image-[0-9][A-Za-z0-9.+~-]*-cloud-amd64$/;
const APT_HINT = 'run `apt-get update` (the image builder needs Debian package lists) and check that the package exists with `apt-cache policy`';

/**
 * Resolves config images.kernel_package: "auto" means the package the
 * `linux-image-cloud-amd64` meta-package currently depends on (what `apt-get
 * install linux-image-cloud-amd64` would pick). Throws ImageBuildFailedError
 * naming the package and the fix when apt does not know it.
 */
export async function resolveKernelPackage(setting: string): Promise<KernelPackage> {
  let name = setting;
  if (setting === 'auto') {
    const deps = await runCommand('apt-cache', ['depends', 'linux-image-cloud-amd64'], { allowFailure: true, timeoutMs: 60_000 });
    const match = /Depends:\s*(linux-image-\S+-cloud-amd64)\s*$/m.exec(deps.stdout.toString());
    if (!match) throw new ImageBuildFailedError(`apt does not know linux-image-cloud-amd64, so images.kernel_package = "auto" cannot be resolved; ${APT_HINT}`);
    name = match[1];
  }
  if (!PACKAGE_NAME.test(name)) {
    throw new ImageBuildFailedError(
      `images.kernel_package = "${name}" is not a Debian cloud kernel package name (expected like linux-image-6.1.0-28-cloud-amd64, or "auto")`,
    );
  }
  const show = await runCommand('apt-cache', ['show', '--no-all-versions', name], { allowFailure: true, timeoutMs: 60_000 });
  const text = show.stdout.toString();
  const version = /^Version:\s*(\S+)/m.exec(text)?.[1];
  const sha256 = /^SHA256:\s*([0-9a-f]{64})/m.exec(text)?.[1];
  if (show.code !== 0 || !version || !sha256) {
    throw new ImageBuildFailedError(`kernel package ${name} is not in the apt package lists; ${APT_HINT}`);
  }
  return { name, version, sha256 };
}

/**
 * Downloads the package's .deb into `cacheDir` (kept there: a second build
 * does not download again) and verifies its SHA256. Returns the file path.
 * The download goes to a directory of its own inside `cacheDir` and is
 * renamed into place only once its hash is right, so builds running at the
 * same time (other tfc processes) never read a file another one is writing.
 */
export async function downloadKernelPackage(pkg: KernelPackage, cacheDir: string): Promise<string> {
  mkdirSync(cacheDir, { recursive: true });
  const existing = findDeb(pkg, cacheDir);
  if (existing && (await sha256File(existing)) === pkg.sha256) return existing;
  const staging = mkdtempSync(join(cacheDir, '.download-'));
  try {
    await runCommand('apt-get', ['download', '-q', `${pkg.name}=${pkg.version}`], {
      cwd: staging,
      timeoutMs: 600_000,
      hint: `check network access to the Debian mirror and ${APT_HINT}`,
    });
    const downloaded = findDeb(pkg, staging);
    if (!downloaded) throw new ImageBuildFailedError(`apt-get download ${pkg.name} reported success but no .deb appeared in ${staging}`);
    const actual = await sha256File(downloaded);
    if (actual !== pkg.sha256) {
      throw new ImageBuildFailedError(
        `downloaded ${downloaded} has SHA256 ${actual}, expected ${pkg.sha256} from the apt index; the download was discarded: run apt-get update and retry`,
      );
    }
    const path = join(cacheDir, downloaded.slice(staging.length + 1));
    // Atomic on one file system: a concurrent reader sees the old file or the whole new one.
    renameSync(downloaded, path);
    return path;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Unpacks the .deb into `dest` with dpkg-deb (no maintainer scripts run). */
export async function extractDeb(debPath: string, dest: string): Promise<void> {
  mkdirSync(dest, { recursive: true });
  await runCommand('dpkg-deb', ['-x', debPath, dest], { timeoutMs: 300_000 });
}

function findDeb(pkg: KernelPackage, dir: string): string | null {
  // apt-get names the file NAME_VERSION_ARCH.deb with ':' in the version escaped as %3a.
  const prefix = `${pkg.name}_${pkg.version.replace(/:/g, '%3a')}_`;
  const file = readdirSync(dir).find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
  return file && existsSync(join(dir, file)) ? join(dir, file) : null;
}

/** SHA256 hex digest of a file, streamed. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => hash.update(c))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
