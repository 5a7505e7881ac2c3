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
}

/** SHA256 over everything a clone depends on; any change means a new golden snapshot. */
export function snapshotKey(input: SnapshotKeyInput): string {
  const ordered = Object.fromEntries(Object.entries(input).sort(([a], [b]) => a.localeCompare(b)));
  return createHash('sha256')
    .update(JSON.stringify({ format: SNAPSHOT_FORMAT, ...ordered }))
    .digest('hex');
}
