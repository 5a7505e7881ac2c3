// `tfc config show`: the effective config in the file's own shape
// (snake_case), each value with where it came from.
import { basename } from 'node:path';
import type { Config, LoadedConfig, ValueSource } from './types.js';

/** The effective config as a tfc.toml document (snake_case keys, profile `name` omitted: it is the table key). */
export function configDocument(config: Config): Record<string, unknown> {
  const profiles: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(config.profiles)) {
    profiles[name] = {
      driver: p.driver,
      image: p.image,
      vcpus: p.vcpus,
      memory_mib: p.memoryMib,
      kernel_args: p.kernelArgs,
      boot_timeout_ms: p.bootTimeoutMs,
      boot_level: p.bootLevel,
      network: p.network.enabled,
      egress_allow: p.network.egressAllow,
      egress_deny: p.network.egressDeny,
      bandwidth_mbit: p.network.bandwidthMbit,
      warmup: [...p.warmup],
      disk_mib: p.diskMib,
      standby_vmms: p.standbyVmms,
      ...(p.targetMs ? { target_ms: p.targetMs } : {}),
    };
  }
  const pools: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(config.pools)) {
    pools[name] = {
      profile: p.profile,
      min: p.min,
      max: p.max,
      target: p.target,
      mode: p.mode,
      prewarm_state: p.prewarmState,
      rewarm: p.rewarm,
      refill_concurrency: p.refillConcurrency,
      strategy: p.strategy,
      strategy_seed: p.strategySeed,
      max_uses: p.maxUses,
      max_age_ms: p.maxAgeMs,
      health_interval_ms: p.healthIntervalMs,
      allocate_timeout_ms: p.allocateTimeoutMs,
      skip_ping_within_ms: p.skipPingWithinMs ?? 0,
      lease_ms: p.leaseMs,
      max_lease_ms: p.maxLeaseMs,
    };
  }
  return {
    data_dir: config.dataDir,
    log_level: config.logLevel,
    default_profile: config.defaultProfile,
    vmm: {
      default_driver: config.vmm.defaultDriver,
      stop_timeout_ms: config.vmm.stopTimeoutMs,
      console_log_max_bytes: config.vmm.consoleLogMaxBytes,
      nice: config.vmm.nice,
      qemu: {
        binary: config.vmm.qemu.binary,
        accel: config.vmm.qemu.accel,
        tcg_tb_size_mib: config.vmm.qemu.tcgTbSizeMib,
        mem_merge: config.vmm.qemu.memMerge,
        thp: config.vmm.qemu.thp,
      },
      firecracker: {
        binary: config.vmm.firecracker.binary,
        api_timeout_ms: config.vmm.firecracker.apiTimeoutMs,
        log_level: config.vmm.firecracker.logLevel,
        metrics_sink: config.vmm.firecracker.metricsSink,
        jailer: {
          enabled: config.vmm.firecracker.jailer.enabled,
          binary: config.vmm.firecracker.jailer.binary,
          uid: config.vmm.firecracker.jailer.uid,
          gid: config.vmm.firecracker.jailer.gid,
          chroot_base_dir: config.vmm.firecracker.jailer.chrootBaseDir,
          cgroup_version: config.vmm.firecracker.jailer.cgroupVersion,
          parent_cgroup: config.vmm.firecracker.jailer.parentCgroup,
          cgroups: [...config.vmm.firecracker.jailer.cgroups],
          resource_limits: [...config.vmm.firecracker.jailer.resourceLimits],
          netns: config.vmm.firecracker.jailer.netns,
        },
      },
    },
    images: { kernel_package: config.images.kernelPackage, ...imageTables(config) },
    network: {
      range: config.network.range,
      prefix_per_vm: config.network.prefixPerVm,
      exposed_ports: config.network.exposedPorts,
      uplink: config.network.uplink,
      masquerade: config.network.masquerade,
    },
    api: {
      listen: config.api.listen,
      max_exec_timeout_ms: config.api.maxExecTimeoutMs,
      request_timeout_ms: config.api.requestTimeoutMs,
      max_upload_bytes: config.api.maxUploadBytes,
      max_download_bytes: config.api.maxDownloadBytes,
    },
    terraphim: {
      // TOML has no null: an unset default_vm_type is left out.
      ...(config.terraphim.defaultVmType === null ? {} : { default_vm_type: config.terraphim.defaultVmType }),
      history_max_entries: config.terraphim.historyMaxEntries,
      history_max_vms: config.terraphim.historyMaxVms,
      vm_types: { ...config.terraphim.vmTypes },
    },
    profiles,
    pools,
  };
}

/** `[images.X]` tables of the images with settings (the built-in "minimal" has none). */
function imageTables(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, d] of Object.entries(config.images.definitions)) {
    if (d.kind === 'debian') {
      out[name] = { kind: d.kind, suite: d.suite, variant: d.variant, packages: [...d.packages], mirror: d.mirror, extra_mib: d.extraMib };
    } else if (d.kind === 'oci') {
      out[name] = { kind: d.kind, source: d.source, ref: d.ref, extra_mib: d.extraMib };
    }
  }
  return out;
}

/** `default`, `tfc.toml:7` (file base name; the header names the full path), `env TFC_DATA_DIR`. */
export function describeSource(source: ValueSource | undefined): string {
  if (!source || source.kind === 'default') return 'default';
  if (source.kind === 'env') return `env ${source.env}`;
  return source.line === undefined ? basename(source.file) : `${basename(source.file)}:${source.line}`;
}

function tomlKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
}

function tomlValue(value: unknown): string {
  // JSON string escapes are valid TOML basic-string escapes; DEL is the one
  // character TOML forbids raw that JSON leaves alone.
  if (typeof value === 'string') return JSON.stringify(value).replaceAll('\x7f', '\\u007f');
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(', ')}]`;
  return String(value);
}

function isTable(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function renderToml(loaded: LoadedConfig): string {
  const out = [
    loaded.file ? `# effective tfc configuration; file: ${loaded.file}` : '# effective tfc configuration; no config file (built-in defaults)',
    '# each value is followed by its source: default, FILE:LINE or env VAR',
  ];
  const walk = (table: Record<string, unknown>, path: string[]) => {
    const scalars = Object.entries(table).filter(([, v]) => !isTable(v));
    if (scalars.length > 0) {
      out.push('');
      if (path.length > 0) out.push(`[${path.map(tomlKey).join('.')}]`);
      const rows = scalars.map(([k, v]) => [`${tomlKey(k)} = ${tomlValue(v)}`, describeSource(loaded.sources[[...path, k].join('.')])]);
      const width = Math.max(...rows.map(([text]) => text.length));
      for (const [text, source] of rows) out.push(`${text.padEnd(width)}  # ${source}`);
    }
    for (const [k, v] of Object.entries(table)) if (isTable(v)) walk(v, [...path, k]);
  };
  walk(configDocument(loaded.config), []);
  return `${out.join('\n')}\n`;
}

/**
 * Renders the effective config. `toml` is valid TOML (parsing it gives
 * `configDocument(config)`) with a `# source` comment after each value;
 * `json` is `{file, config, sources}` with snake_case `config`, ending in a
 * newline. Pure; may be called any number of times.
 */
export function renderConfigShow(loaded: LoadedConfig, format: 'toml' | 'json'): string {
  if (format === 'json') {
    return `${JSON.stringify({ file: loaded.file, config: configDocument(loaded.config), sources: loaded.sources }, null, 2)}\n`;
  }
  return renderToml(loaded);
}
