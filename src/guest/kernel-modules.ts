import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ImageBuildFailedError } from '../errors/index.js';

/**
 * Modules the guest needs for the agent channel (virtio-serial under QEMU,
 * vsock under Firecracker), block devices and networking. Their
 * dependencies are added automatically from each module's .modinfo.
 */
export const GUEST_MODULES = ['virtio_mmio', 'virtio_console', 'virtio_blk', 'overlay', 'virtio_net', 'vmw_vsock_virtio_transport'] as const;

/**
 * What each module group of the guest's init (ModuleGroups in
 * init-script.ts) needs; resolveModuleGroups adds the dependencies.
 * `disk`: virtio-blk for the root and scratch disks, and overlayfs for the
 * writable layer over a read-only root (ext4 is built into the Debian cloud
 * kernel).
 */
export const MODULE_GROUP_WANTS = {
  serial: ['virtio_mmio', 'virtio_console'],
  vsock: ['virtio_mmio', 'vmw_vsock_virtio_transport'],
  net: ['virtio_mmio', 'virtio_net'],
  disk: ['virtio_mmio', 'virtio_blk', 'overlay'],
  all: GUEST_MODULES,
} as const;

/** Every module group of the guest's init, resolved in `modulesDir` (see resolveModules; throws as it does). */
export function resolveModuleGroups(modulesDir: string): Record<keyof typeof MODULE_GROUP_WANTS, ResolvedModule[]> {
  const out = {} as Record<keyof typeof MODULE_GROUP_WANTS, ResolvedModule[]>;
  for (const [group, wanted] of Object.entries(MODULE_GROUP_WANTS)) out[group as keyof typeof MODULE_GROUP_WANTS] = resolveModules(modulesDir, wanted);
  return out;
}

export interface ResolvedModule {
  name: string;
  path: string;
}

/**
 * Reads the `depends=` entry of a kernel module's .modinfo section. Works on
 * uncompressed .ko files by scanning for the NUL-separated key, which is
 * what modinfo does after locating the section.
 */
export function readModuleDepends(ko: Buffer): string[] {
  const marker = Buffer.from('\0depends=');
  const at = ko.indexOf(marker);
  if (at < 0) return [];
  const start = at + marker.length;
  const end = ko.indexOf(0, start);
  const value = ko.toString('latin1', start, end < 0 ? undefined : end);
  return value
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d.length > 0);
}

/**
 * Finds `wanted` modules and their dependencies in an unpacked kernel
 * package's lib/modules/VERSION tree and returns them in load order
 * (every module after its dependencies). Built-in modules are skipped.
 * Throws ImageBuildFailedError for a module that is neither present nor
 * built in, or for compressed modules the builder cannot read.
 */
export function resolveModules(modulesDir: string, wanted: readonly string[]): ResolvedModule[] {
  const files = new Map<string, string>();
  for (const path of walk(join(modulesDir, 'kernel'))) {
    const file = basename(path);
    if (/\.ko\.(xz|zst|gz)$/.test(file)) {
      throw new ImageBuildFailedError(`kernel module ${path} is compressed; this builder needs uncompressed .ko files (Debian 6.1 cloud kernels)`);
    }
    if (file.endsWith('.ko')) files.set(normalise(file.slice(0, -3)), path);
  }
  const builtinPath = join(modulesDir, 'modules.builtin');
  const builtin = new Set(
    existsSync(builtinPath)
      ? readFileSync(builtinPath, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => normalise(basename(l).replace(/\.ko$/, '')))
      : [],
  );
  const ordered: ResolvedModule[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (raw: string, chain: string[]): void => {
    const name = normalise(raw);
    if (state.get(name) === 'done' || builtin.has(name)) return;
    if (state.get(name) === 'visiting') throw new ImageBuildFailedError(`kernel module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const path = files.get(name);
    if (!path) throw new ImageBuildFailedError(`kernel module ${name} (needed by ${chain.join(' -> ') || 'the guest'}) is not in ${modulesDir}`);
    state.set(name, 'visiting');
    for (const dep of readModuleDepends(readFileSync(path))) visit(dep, [...chain, name]);
    state.set(name, 'done');
    ordered.push({ name, path });
  };
  for (const name of wanted) visit(name, []);
  return ordered;
}

// modprobe treats '-' and '_' in module names as the same character.
function normalise(name: string): string {
  return name.replace(/-/g, '_');
}

function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* walk(path);
    else yield path;
  }
}
