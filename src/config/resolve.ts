// Merges the layers into the effective config: defaults < file < env, per
// leaf, remembering where each value came from. Inputs are already
// validated; this step cannot fail.
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { homedir } from 'node:os';
import {
  ALERT_WEBHOOK_DEFAULTS,
  BUILTIN_IMAGE_FIELDS,
  BUILTIN_PROFILE_FIELDS,
  globalDefaults,
  IMAGE_DEFAULTS,
  POOL_DEFAULTS,
  PROFILE_DEFAULTS,
} from './defaults.js';
import { fromFile as clusterFromFile } from '../cluster/config.js';
import type { EnvOverride } from './env.js';
import type { CheckedFile } from './file.js';
import { BUILTIN_VM_TYPES, imageNamesIn, poolNamesIn, profileNamesIn } from './schema.js';
import type {
  BootLevel,
  Config,
  DriverName,
  FirecrackerLogLevel,
  FirecrackerMetricsSink,
  ImageDefinition,
  LoadedConfig,
  LogLevel,
  PoolConfig,
  PoolMode,
  PoolStrategyName,
  PrewarmState,
  Profile,
  QemuAccel,
  QemuThp,
  ValueSource,
} from './types.js';

interface Entry {
  value: unknown;
  source: ValueSource;
}

export interface ResolveInput {
  env: NodeJS.ProcessEnv;
  uid: number;
  cwd: string;
  file: CheckedFile | null;
  overrides: readonly EnvOverride[];
}

function isTable(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !(v instanceof Date) && !Array.isArray(v);
}

/** Leaves of a validated document as [dotted key path, value], in document order. */
function leaves(doc: Record<string, unknown>, prefix: string[] = []): Array<[string[], unknown]> {
  return Object.entries(doc).flatMap(([k, v]): Array<[string[], unknown]> =>
    isTable(v) ? leaves(v, [...prefix, k]) : v === undefined ? [] : [[[...prefix, k], v]],
  );
}

/**
 * `data_dir` is made absolute so every module agrees on it: `~` expands to
 * $HOME, and a relative path is relative to the file that set it (or the
 * working directory for TFC_DATA_DIR), not to wherever tfc is later run from.
 */
function absoluteDir(value: string, base: string, env: NodeJS.ProcessEnv): string {
  const home = env.HOME || homedir();
  if (value === '~') return home;
  if (value.startsWith('~/')) return join(home, value.slice(2));
  return isAbsolute(value) ? value : resolve(base, value);
}

export function resolveConfig(input: ResolveInput): LoadedConfig {
  const { file } = input;
  const entries = new Map<string, Entry>();
  const fromFile = (path: string[]): ValueSource => {
    const line = file?.lines.lineOf(path);
    return { kind: 'file', file: file?.path ?? '', ...(line === undefined ? {} : { line }) };
  };

  for (const [key, value] of globalDefaults(input.env, input.uid)) entries.set(key, { value, source: { kind: 'default' } });
  const {
    profiles: fileProfiles = {},
    pools: filePools = {},
    images: fileImagesTable = {},
    terraphim: fileTerraphim = {},
    cluster: fileCluster,
    ...fileRest
  } = file?.data ?? {};
  // [images] holds one setting (kernel_package) and the image tables, merged below like profiles.
  const { kernel_package: kernelPackage, ...fileImages } = fileImagesTable as Record<string, unknown>;
  // [terraphim.vm_types] is merged over the built-in aliases below (its keys are names, not settings).
  const { vm_types: fileVmTypes = {}, ...terraphimSettings } = fileTerraphim;
  const fileGlobals = { ...fileRest, images: { kernel_package: kernelPackage }, terraphim: terraphimSettings };
  for (const [path, value] of leaves(fileGlobals)) entries.set(path.join('.'), { value, source: fromFile(path) });
  for (const o of input.overrides) entries.set(o.key, { value: o.value, source: { kind: 'env', env: o.env } });

  // vmm.qemu.stop_timeout_ms is the deprecated name of vmm.stop_timeout_ms
  // (it always timed every driver's stop); the new key wins when both are set.
  const legacyStop = entries.get('vmm.qemu.stop_timeout_ms');
  if (legacyStop) {
    if (entries.get('vmm.stop_timeout_ms')!.source.kind === 'default') entries.set('vmm.stop_timeout_ms', legacyStop);
    entries.delete('vmm.qemu.stop_timeout_ms');
  }

  const dataDir = entries.get('data_dir')!;
  const base = dataDir.source.kind === 'file' && file ? dirname(file.path) : input.cwd;
  dataDir.value = absoluteDir(dataDir.value as string, base, input.env);

  // A profile that omits `driver` (the built-in ones included) follows
  // vmm.default_driver, and reports that key's source as its own. Built-in
  // profiles start from their own fields, then PROFILE_DEFAULTS.
  const defaultDriver = entries.get('vmm.default_driver')!;
  for (const name of profileNamesIn(fileProfiles)) {
    const fields: Record<string, unknown> = Object.hasOwn(fileProfiles, name) ? fileProfiles[name] : {};
    const builtin = Object.hasOwn(BUILTIN_PROFILE_FIELDS, name) ? BUILTIN_PROFILE_FIELDS[name] : {};
    for (const [field, fallback] of PROFILE_DEFAULTS) {
      const key = `profiles.${name}.${field}`;
      if (fields[field] !== undefined) entries.set(key, { value: fields[field], source: fromFile(['profiles', name, field]) });
      else if (Object.hasOwn(builtin, field)) entries.set(key, { value: builtin[field], source: { kind: 'default' } });
      else if (field === 'driver') entries.set(key, { ...defaultDriver });
      else entries.set(key, { value: fallback, source: { kind: 'default' } });
    }
  }

  // Images: the built-ins with settings, then every [images.X]; a table
  // named like a built-in overrides its fields (the schema checked kinds).
  const imageNames = imageNamesIn(fileImages).filter((name) => name !== 'minimal');
  for (const name of imageNames) {
    const fields = (Object.hasOwn(fileImages, name) ? fileImages[name] : {}) as Record<string, unknown>;
    const builtin = Object.hasOwn(BUILTIN_IMAGE_FIELDS, name) ? BUILTIN_IMAGE_FIELDS[name] : {};
    const kind = (fields.kind ?? builtin.kind) as 'debian' | 'oci';
    entries.set(
      `images.${name}.kind`,
      fields.kind !== undefined ? { value: kind, source: fromFile(['images', name, 'kind']) } : { value: kind, source: { kind: 'default' } },
    );
    for (const [field, fallback] of IMAGE_DEFAULTS[kind]) {
      const key = `images.${name}.${field}`;
      if (fields[field] !== undefined) {
        // A relative OCI source is relative to the file, like data_dir.
        const value = field === 'source' && file ? absoluteDir(fields[field] as string, dirname(file.path), input.env) : fields[field];
        entries.set(key, { value, source: fromFile(['images', name, field]) });
      } else if (builtin.kind === kind && Object.hasOwn(builtin, field)) entries.set(key, { value: builtin[field], source: { kind: 'default' } });
      else if (fallback !== undefined) entries.set(key, { value: fallback, source: { kind: 'default' } });
    }
  }

  // A pool that omits `profile` (the built-in one included) serves default_profile.
  const defaultProfile = entries.get('default_profile')!;
  for (const name of poolNamesIn(filePools)) {
    const fields: Record<string, unknown> = Object.hasOwn(filePools, name) ? filePools[name] : {};
    for (const [field, fallback] of POOL_DEFAULTS) {
      const key = `pools.${name}.${field}`;
      if (fields[field] !== undefined) entries.set(key, { value: fields[field], source: fromFile(['pools', name, field]) });
      else if (field === 'profile') entries.set(key, { ...defaultProfile });
      else entries.set(key, { value: fallback, source: { kind: 'default' } });
    }
    // Defaults must not contradict explicit bounds (e.g. max = 1 with the default target 2).
    const num = (f: string) => entries.get(`pools.${name}.${f}`)!;
    const [min, max, target] = [num('min'), num('max'), num('target')];
    if (min.source.kind === 'default' && (min.value as number) > (max.value as number)) min.value = max.value;
    if (target.source.kind === 'default') target.value = Math.min(Math.max(target.value as number, min.value as number), max.value as number);
    // Likewise a default lease never exceeds an explicit lower max_lease_ms.
    const [lease, maxLease] = [num('lease_ms'), num('max_lease_ms')];
    if (lease.source.kind === 'default' && (lease.value as number) > (maxLease.value as number)) lease.value = maxLease.value;
  }

  const vmTypes: Record<string, string> = {};
  for (const [alias, target] of Object.entries(BUILTIN_VM_TYPES)) {
    vmTypes[alias] = target;
    entries.set(`terraphim.vm_types.${alias}`, { value: target, source: { kind: 'default' } });
  }
  for (const [alias, target] of Object.entries(fileVmTypes)) {
    vmTypes[alias] = target;
    entries.set(`terraphim.vm_types.${alias}`, { value: target, source: fromFile(['terraphim', 'vm_types', alias]) });
  }

  const get = <T>(key: string): T => entries.get(key)!.value as T;
  const profiles: Record<string, Profile> = {};
  for (const name of profileNamesIn(fileProfiles)) {
    const p = (field: string) => `profiles.${name}.${field}`;
    profiles[name] = {
      name,
      driver: get<DriverName>(p('driver')),
      image: get<string>(p('image')),
      vcpus: get<number>(p('vcpus')),
      memoryMib: get<number>(p('memory_mib')),
      kernelArgs: get<string>(p('kernel_args')),
      bootTimeoutMs: get<number>(p('boot_timeout_ms')),
      bootLevel: get<BootLevel>(p('boot_level')),
      network: {
        enabled: get<boolean>(p('network')),
        egressAllow: get<string[]>(p('egress_allow')),
        egressDeny: get<string[]>(p('egress_deny')),
        bandwidthMbit: get<number>(p('bandwidth_mbit')),
      },
      warmup: [...get<string[]>(p('warmup'))],
      diskMib: get<number>(p('disk_mib')),
      standbyVmms: get<number>(p('standby_vmms')),
      // 0 = the boot level's own target; left out so profiles without a target read as before.
      targetMs: get<number>(p('target_ms')) || undefined,
    };
  }
  const definitions: Record<string, ImageDefinition> = { minimal: { name: 'minimal', kind: 'minimal' } };
  for (const name of imageNames) {
    const i = (field: string) => `images.${name}.${field}`;
    definitions[name] =
      get<string>(i('kind')) === 'oci'
        ? { name, kind: 'oci', source: get<string>(i('source')), ref: get<string>(i('ref')), extraMib: get<number>(i('extra_mib')) }
        : {
            name,
            kind: 'debian',
            suite: get<string>(i('suite')),
            variant: get<string>(i('variant')),
            packages: [...get<string[]>(i('packages'))],
            mirror: get<string>(i('mirror')),
            extraMib: get<number>(i('extra_mib')),
          };
  }
  const pools: Record<string, PoolConfig> = {};
  for (const name of poolNamesIn(filePools)) {
    const p = (field: string) => `pools.${name}.${field}`;
    pools[name] = {
      name,
      profile: get<string>(p('profile')),
      min: get<number>(p('min')),
      max: get<number>(p('max')),
      target: get<number>(p('target')),
      mode: get<PoolMode>(p('mode')),
      prewarmState: get<PrewarmState>(p('prewarm_state')),
      rewarm: get<boolean>(p('rewarm')),
      refillConcurrency: get<number>(p('refill_concurrency')),
      strategy: get<PoolStrategyName>(p('strategy')),
      strategySeed: get<number>(p('strategy_seed')),
      maxUses: get<number>(p('max_uses')),
      maxAgeMs: get<number>(p('max_age_ms')),
      healthIntervalMs: get<number>(p('health_interval_ms')),
      allocateTimeoutMs: get<number>(p('allocate_timeout_ms')),
      skipPingWithinMs: get<number>(p('skip_ping_within_ms')),
      leaseMs: get<number>(p('lease_ms')),
      maxLeaseMs: get<number>(p('max_lease_ms')),
    };
  }
  const config: Config = {
    dataDir: get<string>('data_dir'),
    logLevel: get<LogLevel>('log_level'),
    defaultProfile: get<string>('default_profile'),
    vmm: {
      defaultDriver: get<DriverName>('vmm.default_driver'),
      stopTimeoutMs: get<number>('vmm.stop_timeout_ms'),
      consoleLogMaxBytes: get<number>('vmm.console_log_max_bytes'),
      nice: get<number>('vmm.nice'),
      qemu: {
        binary: get<string>('vmm.qemu.binary'),
        accel: get<QemuAccel>('vmm.qemu.accel'),
        tcgTbSizeMib: get<number>('vmm.qemu.tcg_tb_size_mib'),
        memMerge: get<boolean>('vmm.qemu.mem_merge'),
        thp: get<QemuThp>('vmm.qemu.thp'),
      },
      firecracker: {
        binary: get<string>('vmm.firecracker.binary'),
        apiTimeoutMs: get<number>('vmm.firecracker.api_timeout_ms'),
        logLevel: get<FirecrackerLogLevel>('vmm.firecracker.log_level'),
        metricsSink: get<FirecrackerMetricsSink>('vmm.firecracker.metrics_sink'),
        jailer: {
          enabled: get<boolean>('vmm.firecracker.jailer.enabled'),
          binary: get<string>('vmm.firecracker.jailer.binary'),
          uid: get<number>('vmm.firecracker.jailer.uid'),
          gid: get<number>('vmm.firecracker.jailer.gid'),
          chrootBaseDir: get<string>('vmm.firecracker.jailer.chroot_base_dir'),
          cgroupVersion: get<1 | 2>('vmm.firecracker.jailer.cgroup_version'),
          parentCgroup: get<string>('vmm.firecracker.jailer.parent_cgroup'),
          // Copies: the effective config hands out fresh objects on every load.
          cgroups: [...get<string[]>('vmm.firecracker.jailer.cgroups')],
          resourceLimits: [...get<string[]>('vmm.firecracker.jailer.resource_limits')],
          netns: get<string>('vmm.firecracker.jailer.netns'),
        },
      },
    },
    images: { kernelPackage: get<string>('images.kernel_package'), definitions },
    profiles,
    pools,
    network: {
      range: get<string>('network.range'),
      prefixPerVm: get<number>('network.prefix_per_vm'),
      exposedPorts: get<number[]>('network.exposed_ports'),
      uplink: get<string>('network.uplink'),
      masquerade: get<boolean>('network.masquerade'),
    },
    api: {
      listen: get<string>('api.listen'),
      maxExecTimeoutMs: get<number>('api.max_exec_timeout_ms'),
      requestTimeoutMs: get<number>('api.request_timeout_ms'),
      maxUploadBytes: get<number>('api.max_upload_bytes'),
      maxDownloadBytes: get<number>('api.max_download_bytes'),
    },
    terraphim: {
      vmTypes,
      defaultVmType: (entries.get('terraphim.default_vm_type')?.value as string | undefined) ?? null,
      historyMaxEntries: get<number>('terraphim.history_max_entries'),
      historyMaxVms: get<number>('terraphim.history_max_vms'),
    },
    security: {
      dropPrivileges: get<boolean>('security.drop_privileges'),
      uidRangeStart: get<number>('security.uid_range_start'),
      uidCount: get<number>('security.uid_count'),
    },
    alerts: {
      enabled: get<boolean>('alerts.enabled'),
      evalIntervalMs: get<number>('alerts.eval_interval_ms'),
      rules: Object.fromEntries(
        Object.entries(fileRest.alerts?.rules ?? {}).map(([rule, r]) => [rule, { threshold: r?.threshold, forMs: r?.for_ms, enabled: r?.enabled }]),
      ),
      webhooks: (fileRest.alerts?.webhooks ?? []).map((w) => ({
        url: w.url ?? '',
        secret: w.secret ?? null,
        secretEnv: w.secret_env ?? null,
        events: [...(w.events ?? ALERT_WEBHOOK_DEFAULTS.events)],
        timeoutMs: w.timeout_ms ?? ALERT_WEBHOOK_DEFAULTS.timeout_ms,
        maxAttempts: w.max_attempts ?? ALERT_WEBHOOK_DEFAULTS.max_attempts,
        queueSize: w.queue_size ?? ALERT_WEBHOOK_DEFAULTS.queue_size,
      })),
    },
    // [cluster] is resolved by the cluster module (secrets from the environment; kept out of `sources` and `tfc config show`).
    ...(fileCluster ? { cluster: clusterFromFile(fileCluster, { env: input.env }) } : {}),
  };
  const sources = Object.fromEntries([...entries].map(([key, e]) => [key, e.source]));
  return { config, file: file?.path ?? null, sources };
}
