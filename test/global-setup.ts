import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultConfig } from '../src/config/index.js';
import { buildImage, type ImageBuildOptions } from '../src/guest/image-builder.js';
import { findExecutable } from '../src/process/index.js';
import { dataLayout } from '../src/store/layout.js';

/**
 * Builds the guest images once for the integration tests, into a data dir
 * kept between runs (cache hits the second time): TFC_TEST_DATA_DIR or
 * .tfc/test-data in the repository. `minimal` first (its kernel and
 * initramfs are shared), then the built-in `python` and `node` images side
 * by side (one mmdebstrap each; they mostly wait on the mirror and dpkg).
 * TFC_TEST_SKIP_ROOTFS_IMAGES=1 skips the two (for quick local runs of
 * tests that only boot `minimal`).
 */
export default async function setup(): Promise<void> {
  const dir = resolve(process.env.TFC_TEST_DATA_DIR ?? join(import.meta.dirname, '..', '.tfc', 'test-data'));
  mkdirSync(dir, { recursive: true });
  process.env.TFC_TEST_DATA_DIR = dir;
  const layout = dataLayout(dir);
  const definitions = defaultConfig().images.definitions;
  const build = async (name: string) => {
    const started = Date.now();
    const options: ImageBuildOptions = { name, kernelPackage: 'auto', definition: definitions[name] };
    const result = await buildImage(layout, options);
    process.stderr.write(
      `[global-setup] image ${name} ${result.image.manifest.digest.slice(0, 16)} ${result.cacheHit ? 'cache hit' : 'built'} in ${Date.now() - started} ms (${dir})\n`,
    );
  };
  await build('minimal');
  // Debian images need mmdebstrap and root; tests that boot them skip (saying so) when they are not built.
  const why =
    process.env.TFC_TEST_SKIP_ROOTFS_IMAGES === '1'
      ? 'TFC_TEST_SKIP_ROOTFS_IMAGES=1'
      : !findExecutable('mmdebstrap')
        ? 'mmdebstrap is not installed (apt-get install mmdebstrap)'
        : process.getuid?.() !== 0
          ? 'not running as root (mmdebstrap --mode=root)'
          : undefined;
  if (why) {
    process.stderr.write(`[global-setup] images python and node not built: ${why}\n`);
    return;
  }
  await Promise.all([build('python'), build('node')]);
}
