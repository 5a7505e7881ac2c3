// Built-in defaults, keyed by dotted snake_case key like the file. Profile
// defaults are per profile field: every profile (the built-in "minimal" and
// each [profiles.X] in the file) starts from these.
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { BUILTIN_PROFILE } from './schema.js';

/**
 * `data_dir` default: /var/lib/tfc for root (uid 0), else
 * $XDG_DATA_HOME/tfc (only when absolute, per the XDG spec), else
 * ~/.local/share/tfc with ~ from $HOME or the OS.
 */
export function defaultDataDir(env: NodeJS.ProcessEnv, uid: number): string {
  if (uid === 0) return '/var/lib/tfc';
  const xdg = env.XDG_DATA_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'tfc');
  return join(env.HOME || homedir(), '.local', 'share', 'tfc');
}

/** Top-level defaults (everything except profiles), in the order `config show` prints them. */
export function globalDefaults(env: NodeJS.ProcessEnv, uid: number): Array<[string, unknown]> {
  return [
    ['data_dir', defaultDataDir(env, uid)],
    ['log_level', 'info'],
    ['default_profile', BUILTIN_PROFILE],
    ['vmm.default_driver', 'qemu'],
    ['vmm.stop_timeout_ms', 3000],
    ['vmm.console_log_max_bytes', 8 * 1024 * 1024],
    ['vmm.nice', 10],
    ['vmm.qemu.binary', 'qemu-system-x86_64'],
    ['vmm.qemu.accel', 'auto'],
    ['vmm.qemu.tcg_tb_size_mib', 128],
    ['vmm.qemu.mem_merge', false],
    ['vmm.qemu.thp', 'never'],
    ['vmm.firecracker.binary', 'firecracker'],
    ['vmm.firecracker.api_timeout_ms', 5000],
    ['vmm.firecracker.log_level', 'info'],
    ['vmm.firecracker.metrics_sink', 'file'],
    ['vmm.firecracker.jailer.enabled', true],
    ['vmm.firecracker.jailer.binary', 'jailer'],
    ['vmm.firecracker.jailer.uid', 65534],
    ['vmm.firecracker.jailer.gid', 65534],
    ['vmm.firecracker.jailer.chroot_base_dir', '/srv/jailer'],
    ['vmm.firecracker.jailer.cgroup_version', 2],
    ['vmm.firecracker.jailer.parent_cgroup', ''],
    ['vmm.firecracker.jailer.cgroups', []],
    ['vmm.firecracker.jailer.resource_limits', []],
    ['vmm.firecracker.jailer.netns', ''],
    ['images.kernel_package', 'auto'],
    ['network.range', '10.200.0.0/16'],
    ['network.prefix_per_vm', 30],
    ['network.exposed_ports', []],
    ['network.uplink', ''],
    ['network.masquerade', true],
    ['api.listen', '127.0.0.1:7070'],
    ['api.max_exec_timeout_ms', 600_000],
    ['api.request_timeout_ms', 600_000],
    ['api.max_upload_bytes', 1024 * 1024 * 1024],
    ['api.max_download_bytes', 1024 * 1024 * 1024],
    ['terraphim.history_max_entries', 100],
    ['terraphim.history_max_vms', 1024],
    ['security.drop_privileges', true],
    ['security.uid_range_start', 2_000_000_000],
    ['security.uid_count', 65_536],
    ['alerts.enabled', true],
    ['alerts.eval_interval_ms', 1000],
  ];
}

/**
 * Defaults of one profile's fields, in print order. `driver` has no fixed
 * default: it is whatever `vmm.default_driver` resolves to.
 */
export const PROFILE_DEFAULTS: ReadonlyArray<[string, unknown]> = [
  ['driver', undefined],
  ['image', 'minimal'],
  ['vcpus', 1],
  ['memory_mib', 256],
  ['kernel_args', ''],
  ['boot_timeout_ms', 120_000],
  ['boot_level', 'standard'],
  ['network', false],
  ['egress_allow', []],
  ['egress_deny', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10']],
  ['bandwidth_mbit', 0],
  ['warmup', []],
  ['disk_mib', 0],
  ['standby_vmms', 1],
  ['target_ms', 0],
];

/** Defaults of each `[[alerts.webhooks]]` field that has one (`url` is required; no secret = unsigned). */
export const ALERT_WEBHOOK_DEFAULTS = { events: ['alert'], timeout_ms: 5000, max_attempts: 5, queue_size: 256 } as const;

/**
 * Fields of the built-in profiles that differ from PROFILE_DEFAULTS (a
 * `[profiles.X]` table of the same name overrides them field by field).
 * `python` and `node` use `instant`: VMs are clones of a golden snapshot
 * taken after `warmup` ran, so the interpreter's pages are already loaded;
 * the template boots with the `ultrafast` arguments, which keep the block
 * drivers a root filesystem needs (`sub2second` loads none).
 */
export const BUILTIN_PROFILE_FIELDS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  minimal: {},
  python: {
    image: 'python',
    memory_mib: 512,
    boot_level: 'instant',
    warmup: ['python3', '-c', 'import json, os, re, sys, subprocess, pathlib'],
  },
  node: {
    image: 'node',
    memory_mib: 512,
    boot_level: 'instant',
    warmup: ['node', '-e', "require('fs'); require('child_process')"],
  },
};

/** Defaults of `[images.X]` fields per kind, in print order (`source` of an oci image has none: it is required). */
export const IMAGE_DEFAULTS: Readonly<Record<'debian' | 'oci', ReadonlyArray<[string, unknown]>>> = {
  debian: [
    ['suite', 'bookworm'],
    ['variant', 'minbase'],
    ['packages', []],
    ['mirror', 'http://deb.debian.org/debian'],
    ['extra_mib', 64],
  ],
  oci: [
    ['source', undefined],
    ['ref', ''],
    ['extra_mib', 64],
  ],
};

/** Fields of the built-in images with settings; `[images.python]` etc. override them field by field. */
export const BUILTIN_IMAGE_FIELDS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  python: { kind: 'debian', packages: ['python3', 'ca-certificates', 'curl'] },
  node: { kind: 'debian', packages: ['nodejs', 'ca-certificates', 'curl'] },
};

/**
 * Defaults of one pool's fields, in print order. `profile` has no fixed
 * default: it is whatever `default_profile` resolves to.
 */
export const POOL_DEFAULTS: ReadonlyArray<[string, unknown]> = [
  ['profile', undefined],
  ['min', 1],
  ['max', 4],
  ['target', 2],
  ['mode', 'fresh'],
  ['prewarm_state', 'running'],
  ['rewarm', true],
  ['refill_concurrency', 1],
  ['strategy', 'first-available'],
  ['strategy_seed', 1],
  ['max_uses', 100],
  ['max_age_ms', 3_600_000],
  ['health_interval_ms', 5000],
  ['allocate_timeout_ms', 10_000],
  ['skip_ping_within_ms', 10_000],
  ['lease_ms', 600_000],
  ['max_lease_ms', 86_400_000],
];
