/**
 * The root filesystem kinds behind one small interface: what goes into a
 * kind's cache key (cheap, no bootstrap) and how a kind fills a directory.
 * The builder (src/guest/image-builder.ts) packs the directory into ext4
 * the same way for every kind. Adding a kind = one entry here.
 */
import type { DebianImageDefinition, OciImageDefinition } from '../../config/index.js';
import type { RootfsContents } from '../image-store.js';
import { bootstrapDebian, debianContents, DPKG_PATH_FILTERS, mmdebstrapVersion } from './debian.js';
import { importOciImage, ociSourceDigest } from './oci-import.js';

export type RootfsDefinition = DebianImageDefinition | OciImageDefinition;

/** Bumped whenever a kind's output for the same inputs changes (part of every rootfs key). */
export const ROOTFS_BUILDER_VERSION = '1';

export interface PopulateEnv {
  /** Reports a sub-step to the progress display. */
  detail: (text: string) => void;
  /** Where downloaded Debian packages are kept between builds (data_dir/cache/debs/mmdebstrap). */
  debCacheDir: string;
}

export interface RootfsKind<D extends RootfsDefinition> {
  /** Everything that decides the tree's content, for the cache key. May read the source (OCI digest) but must not build. */
  keyInputs(def: D): Promise<Record<string, unknown>>;
  /** Progress step name of `populate`. */
  stepName: string;
  /** Short description of the inputs for progress ("bookworm minbase, mmdebstrap 1.3.5"). */
  describe(def: D, inputs: Record<string, unknown>): string;
  /** Fills `dir` (absent or empty) with the root filesystem; `detail` reports sub-steps (OCI layers). */
  populate(def: D, dir: string, inputs: Record<string, unknown>, env: PopulateEnv): Promise<RootfsContents>;
}

const size = (bytes: number) => (bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1048576).toFixed(1)} MiB`);

const debian: RootfsKind<DebianImageDefinition> = {
  // The key names the inputs, not the mirror's state: a package updated on
  // the mirror does not rebuild the image by itself (`--force` does).
  async keyInputs(def) {
    return {
      kind: 'debian',
      suite: def.suite,
      variant: def.variant,
      packages: [...new Set(def.packages)].sort(),
      mirror: def.mirror,
      mmdebstrap: await mmdebstrapVersion(),
      dpkgFilters: DPKG_PATH_FILTERS,
    };
  },
  stepName: 'bootstrap debian rootfs (mmdebstrap)',
  describe: (def, inputs) => `debian ${def.suite} ${def.variant}, ${def.packages.length} packages asked, mmdebstrap ${String(inputs.mmdebstrap)}`,
  async populate(def, dir, inputs, env) {
    await bootstrapDebian(def, dir, { debCacheDir: env.debCacheDir });
    return debianContents(dir, def, String(inputs.mmdebstrap));
  },
};

const oci: RootfsKind<OciImageDefinition> = {
  async keyInputs(def) {
    const ref = def.ref === '' ? undefined : def.ref;
    return { kind: 'oci', sourceDigest: await ociSourceDigest(def.source, ref === undefined ? {} : { ref }) };
  },
  stepName: 'import oci image',
  describe: (def, inputs) => `oci ${def.source}${def.ref ? ` (${def.ref})` : ''} ${String(inputs.sourceDigest).slice(0, 19)}`,
  async populate(def, dir, inputs, { detail }) {
    const result = await importOciImage(def.source, dir, {
      ...(def.ref === '' ? {} : { ref: def.ref }),
      // onLayer runs after each layer, with a 0-based index; sizeBytes is the (compressed) blob.
      onLayer: (l) => detail(`layer ${l.index + 1}/${l.total} ${l.digest.slice(0, 19)} ${size(l.sizeBytes)}`),
    });
    return {
      kind: 'oci',
      source: def.source,
      ref: def.ref,
      source_digest: String(inputs.sourceDigest),
      format: result.format,
      manifest_digest: result.manifestDigest,
      layers: result.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, sizeBytes: l.sizeBytes })),
      config: { ...result.config },
      stats: { ...result.stats },
    };
  },
};

/** The kind implementation of a definition. */
export function rootfsKind(def: RootfsDefinition): RootfsKind<RootfsDefinition> {
  return (def.kind === 'debian' ? debian : oci) as RootfsKind<RootfsDefinition>;
}
