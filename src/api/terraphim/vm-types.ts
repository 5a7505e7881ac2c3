/**
 * `vm_type` -> pool. Terraphim names VM types (its default is
 * "focal-optimized"); here a VM comes from a pool, so a vm_type is, in this
 * order: an alias from the options (`vmTypes`, from config
 * `[terraphim.vm_types]` plus the built-in aliases), a pool name, or a
 * profile name served by a pool of that profile (the first such pool by name).
 * Anything else is INVALID_ARGUMENT listing the vm_types that work.
 */
import { InvalidArgumentError } from '../../errors/index.js';

export interface PoolLike {
  name: string;
  profile: string;
}

/** Every vm_type this server accepts, sorted: aliases, pool names, profiles of pools. */
export function validVmTypes(pools: readonly PoolLike[], aliases: Readonly<Record<string, string>> = {}): string[] {
  const names = new Set<string>([...Object.keys(aliases), ...pools.map((p) => p.name), ...pools.map((p) => p.profile)]);
  return [...names].sort();
}

/** The pool serving `vmType`. Throws InvalidArgumentError naming the valid vm_types. */
export function resolveVmType(vmType: string, pools: readonly PoolLike[], aliases: Readonly<Record<string, string>> = {}): string {
  const target = Object.prototype.hasOwnProperty.call(aliases, vmType) ? aliases[vmType]! : vmType;
  const byName = pools.find((p) => p.name === target);
  if (byName) return byName.name;
  const byProfile = [...pools].sort((a, b) => (a.name < b.name ? -1 : 1)).find((p) => p.profile === target);
  if (byProfile) return byProfile.name;
  const valid = validVmTypes(pools, aliases);
  throw new InvalidArgumentError(
    `unknown vm_type ${JSON.stringify(vmType.slice(0, 64))}; valid vm_types: ${valid.length ? valid.join(', ') : '(none: this server has no pools; add a [pools.NAME] table to the config)'}`,
    { details: { field: 'vm_type', vm_types: valid } },
  );
}
