import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildImage } from '../src/guest/image-builder.js';
import { dataLayout } from '../src/store/layout.js';

/**
 * Builds the guest image once for the integration tests, into a data dir
 * kept between runs (a cache hit the second time): TFC_TEST_DATA_DIR or
 * .tfc/test-data in the repository.
 */
export default async function setup(): Promise<void> {
  const dir = resolve(process.env.TFC_TEST_DATA_DIR ?? join(import.meta.dirname, '..', '.tfc', 'test-data'));
  mkdirSync(dir, { recursive: true });
  process.env.TFC_TEST_DATA_DIR = dir;
  const started = Date.now();
  const result = await buildImage(dataLayout(dir), { name: 'minimal', kernelPackage: 'auto' });
  process.stderr.write(
    `[global-setup] image ${result.image.manifest.digest.slice(0, 16)} ${result.cacheHit ? 'cache hit' : 'built'} in ${Date.now() - started} ms (${dir})\n`,
  );
}
