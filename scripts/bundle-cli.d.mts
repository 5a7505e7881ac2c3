// Types of scripts/bundle-cli.mjs, for the tests that import it (src/cli/bundle.test.ts).
import type { BuildOptions, BuildResult } from 'esbuild';

export const BUNDLED_PACKAGES: readonly string[];
export const CHUNKS_DIR: string;
export function packageOf(specifier: string): string | undefined;
export function bundleOptions(options: { entry: string; outDir: string; metafile?: boolean }): BuildOptions;
export function bundleCli(options: { outDir: string; entry?: string; metafile?: boolean }): Promise<BuildResult<{ metafile: true }>>;
