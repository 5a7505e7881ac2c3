// Which images `tfc image build` builds: names, --profile, --all or
// --from-oci, each resolved to a definition with a readable error when the
// input is wrong (what is wrong and the command or key that fixes it).
import { isAbsolute, resolve } from 'node:path';
import { IMAGE_NAME_PATTERN, resolveProfile, type Config, type ImageDefinition } from '../config/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import { resolveImage } from '../guest/image-store.js';
import type { DataLayout } from '../store/layout.js';

export interface ImageBuildSelection {
  names: string[];
  profile?: string;
  all?: boolean;
  fromOci?: string;
  name?: string;
  ref?: string;
  extraMib?: string;
}

export interface ImageTarget {
  name: string;
  definition: ImageDefinition;
  /** Why this image is built, for the "building ..." line ("for profile \"x\"", "from PATH"); "" when named. */
  reason: string;
}

/** Default free space of an image made with --from-oci (as images.X.extra_mib). */
export const FROM_OCI_EXTRA_MIB = 64;

/**
 * Resolves the selection to build targets, in order, without duplicates.
 * Throws InvalidArgumentError for contradicting options, unknown names and
 * bad values; ProfileNotFoundError for an unknown --profile.
 */
export function imageTargets(config: Config, layout: DataLayout, sel: ImageBuildSelection, cwd = process.cwd()): ImageTarget[] {
  const modes = [sel.names.length > 0, sel.profile !== undefined, sel.all === true, sel.fromOci !== undefined].filter(Boolean).length;
  if (modes > 1) throw usage('give image names, --profile, --all or --from-oci, not several of them');
  if (sel.fromOci === undefined && (sel.name !== undefined || sel.ref !== undefined || sel.extraMib !== undefined)) {
    throw usage('--name, --ref and --extra-mib go with --from-oci PATH');
  }
  if (sel.fromOci !== undefined) return [fromOci(config, sel, cwd)];
  if (sel.all) {
    return Object.values(config.images.definitions).map((definition) => ({ name: definition.name, definition, reason: '' }));
  }
  if (sel.names.length > 0) {
    return [...new Set(sel.names)].map((name) => ({ name, definition: definitionOf(config, layout, name), reason: '' }));
  }
  const profile = resolveProfile(config, sel.profile);
  return [{ name: profile.image, definition: definitionOf(config, layout, profile.image), reason: `for profile "${profile.name}"` }];
}

/** The config's definition of `name`, else the source an earlier --from-oci build recorded. */
function definitionOf(config: Config, layout: DataLayout, name: string): ImageDefinition {
  if (Object.hasOwn(config.images.definitions, name)) return config.images.definitions[name];
  if (!IMAGE_NAME_PATTERN.test(name)) throw usage(`invalid image name ${JSON.stringify(name)}: must match ${IMAGE_NAME_PATTERN.source}`);
  let contents;
  try {
    contents = resolveImage(layout, name).manifest.contents;
  } catch {
    // not built either: fall through to the error below
  }
  if (contents?.kind === 'oci') {
    return { name, kind: 'oci', source: contents.source, ref: contents.ref, extraMib: FROM_OCI_EXTRA_MIB };
  }
  const known = Object.keys(config.images.definitions).join(', ');
  throw usage(
    `unknown image "${name}" (images of the config: ${known}); define [images.${name}] in tfc.toml or build it with \`tfc image build --from-oci PATH --name ${name}\``,
  );
}

function fromOci(config: Config, sel: ImageBuildSelection, cwd: string): ImageTarget {
  const name = sel.name;
  if (name === undefined) throw usage('--from-oci needs --name NAME: the image name profiles will use (profiles.X.image)');
  if (!IMAGE_NAME_PATTERN.test(name)) throw usage(`invalid --name ${JSON.stringify(name)}: must match ${IMAGE_NAME_PATTERN.source}`);
  if (Object.hasOwn(config.images.definitions, name)) {
    throw usage(
      `image "${name}" is defined in the config (${config.images.definitions[name].kind}); pick another --name, or set images.${name}.source in tfc.toml`,
    );
  }
  if (sel.fromOci === '') throw usage('--from-oci needs a path to an OCI image layout directory or tar');
  let extraMib = FROM_OCI_EXTRA_MIB;
  if (sel.extraMib !== undefined) {
    extraMib = Number(sel.extraMib);
    if (!/^[0-9]+$/.test(sel.extraMib) || extraMib > 1_048_576)
      throw usage(`--extra-mib must be an integer from 0 to 1048576, got ${JSON.stringify(sel.extraMib)}`);
  }
  if (sel.ref !== undefined && (sel.ref === '' || sel.ref.length > 256))
    throw usage('--ref must name a manifest of the layout, e.g. "latest" (1 to 256 characters)');
  const source = isAbsolute(sel.fromOci!) ? sel.fromOci! : resolve(cwd, sel.fromOci!);
  return { name, definition: { name, kind: 'oci', source, ref: sel.ref ?? '', extraMib }, reason: `from ${source}` };
}

function usage(message: string): Error {
  return new InvalidArgumentError(message);
}
