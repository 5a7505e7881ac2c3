import { isAbsolute, relative } from 'node:path';
import type { VmLaunchSpec } from '../vmm/driver.js';

/**
 * How long the VMM of a VM that discards its state gets to quit before it
 * is killed (the `quit` command's answer, then the exit, each bounded by it).
 * QEMU answers `quit` and exits in a few ms; this only bounds a VMM that hangs.
 */
export const DISCARD_QUIT_GRACE_MS = 500;

/**
 * Whether stopping a VM may skip the guest's power-off and end its VMM at
 * once (QMP `quit`, SIGKILL after DISCARD_QUIT_GRACE_MS; Firecracker:
 * SIGTERM, then SIGKILL) instead of asking the agent to reboot the guest and
 * waiting for it (docs/pools.md#stopping-a-vm).
 *
 * All the guest's power-off does for the host is `sync()`: the agent
 * flushes the guest's dirty pages to its disks and reboots (it does not
 * stop the guest's processes first). That matters only for state that
 * outlives the VM, so a VM qualifies when nothing it could write does:
 *
 * - its RAM is not a file kept after it: no `snapshotMemoryPath` (a golden
 *   snapshot's template keeps its RAM in the snapshot's memory file; clones
 *   map their snapshot's memory privately, copy-on-write, and cold boots
 *   have anonymous RAM);
 * - every writable disk is in its run dir, which its cleanup removes (the
 *   scratch disk; the image's root disk is read-only and its overlay is a
 *   tmpfs in guest RAM). A writable disk anywhere else may be kept (a
 *   template's scratch disk is hard-linked into its snapshot).
 *
 * Today that is every clone (pool members, `tfc vm run`, forks, VMs resumed
 * from a pause to disk: their state was written before the stop) and every
 * cold-booted VM that is not a template. A VM without a launch spec (never
 * fully started) does not qualify: the graceful path is the safe default.
 */
export function discardsStateOnStop(spec: Pick<VmLaunchSpec, 'runDir' | 'snapshotMemoryPath' | 'drives'> | undefined): boolean {
  if (!spec || spec.snapshotMemoryPath !== undefined) return false;
  return (spec.drives ?? []).every((d) => d.readOnly || isInside(spec.runDir, d.path));
}

/** `path` is strictly below `dir` (lexically; run dirs are made by tfc with no symlinks of the guest's in them). */
function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}
