/**
 * Golden snapshots: per profile, a VM cold-booted once, paused at
 * agent-ready (after the profile's warmup) and saved, so VMs are served as
 * copy-on-write clones instead of booting. Owns the snapshot directory
 * layout (memory, state, the template's scratch disk), manifests, keys
 * (profile, image digest, driver and driver version, kernel command line,
 * warmup, disk size: a change to any makes a new snapshot) and
 * `tfc snapshot ls|create|rm`. Uses the vm module to boot and restore;
 * never imports HTTP code.
 */
export { SnapshotManager, type GoldenSnapshot, type SnapshotManifest } from './snapshot-manager.js';
export { snapshotKey, type SnapshotKeyInput } from './snapshot-key.js';
