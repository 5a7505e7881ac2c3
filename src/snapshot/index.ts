/**
 * Golden snapshots: per profile, a VM cold-booted once, paused at
 * agent-ready and saved, so VMs are served as copy-on-write clones instead
 * of booting. Owns the snapshot directory layout, manifests, keys (profile,
 * image digest, driver and driver version: a change to any makes a new
 * snapshot) and `tfc snapshot ls|create|rm`. Uses the vm module to boot and
 * restore; never imports HTTP code.
 */
export { SnapshotManager, type GoldenSnapshot, type SnapshotManifest } from './snapshot-manager.js';
export { snapshotKey, type SnapshotKeyInput } from './snapshot-key.js';
