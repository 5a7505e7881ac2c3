import { createHash } from 'node:crypto';

/** Bumped when the snapshot layout or what a clone expects changes. */
export const SNAPSHOT_FORMAT = 1;

export interface SnapshotKeyInput {
  profile: string;
  driver: string;
  driverVersion: string;
  accel: string;
  imageDigest: string;
  vcpus: number;
  memoryMib: number;
  /** The template's complete kernel command line: clones inherit the booted kernel. */
  kernelArgs: string;
  /**
   * profiles.X.warmup, when not empty: what ran in the template before the
   * snapshot is in every clone's memory. Left out when empty, so profiles
   * without warmup keep the keys they had before the field existed.
   */
  warmup?: readonly string[];
  /** profiles.X.disk_mib, when > 0: clones get a copy of the template's scratch disk of this size. Left out when 0. */
  diskMib?: number;
}

/** SHA256 over everything a clone depends on; any change means a new golden snapshot. */
export function snapshotKey(input: SnapshotKeyInput): string {
  // Code-unit order, not localeCompare (which starts ICU: 8-40 ms of `tfc vm run`); the same order for these ASCII keys.
  const ordered = Object.fromEntries(Object.entries(input).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return createHash('sha256')
    .update(JSON.stringify({ format: SNAPSHOT_FORMAT, ...ordered }))
    .digest('hex');
}
