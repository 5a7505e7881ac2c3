// Public shapes of the effective configuration. TypeScript fields are
// camelCase; the file, `sources` keys, error keys and `tfc config show` use the
// snake_case dotted keys of tfc.toml (e.g. `vmm.qemu.stop_timeout_ms`).

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type DriverName = 'qemu' | 'firecracker';
export type QemuAccel = 'auto' | 'kvm' | 'tcg';
export type QemuThp = 'inherit' | 'never';
export type FirecrackerLogLevel = 'error' | 'warning' | 'info' | 'debug' | 'trace' | 'off';
export type FirecrackerMetricsSink = 'file' | 'fifo';

/** `[vmm.firecracker.jailer]`: run Firecracker through its jailer (docs/firecracker.md#jailer). */
export interface JailerConfig {
  /** `vmm.firecracker.jailer.enabled`; default false. */
  enabled: boolean;
  /** `vmm.firecracker.jailer.binary`; a name looked up in PATH or a path, default "jailer". */
  binary: string;
  /** `vmm.firecracker.jailer.uid` / `gid`: who Firecracker runs as in the jail; default 65534 (nobody/nogroup). */
  uid: number;
  gid: number;
  /** `vmm.firecracker.jailer.chroot_base_dir`; default "/srv/jailer". */
  chrootBaseDir: string;
  /** `vmm.firecracker.jailer.cgroup_version`: 1 or 2, default 2. */
  cgroupVersion: 1 | 2;
  /** `vmm.firecracker.jailer.parent_cgroup`; "" = the jailer's default (the exec file's name). */
  parentCgroup: string;
  /** `vmm.firecracker.jailer.cgroups`: `--cgroup FILE=VALUE` for every VM; default []. */
  cgroups: string[];
  /** `vmm.firecracker.jailer.resource_limits`: `--resource-limit fsize=N|no-file=N`; default []. */
  resourceLimits: string[];
  /** `vmm.firecracker.jailer.netns`: network namespace path for every VM; "" = none (default). */
  netns: string;
}
export type BootLevel = 'standard' | 'fast' | 'ultrafast' | 'sub2second' | 'instant';
export type PoolMode = 'fresh' | 'reuse';
export type PrewarmState = 'running' | 'paused';
export type PoolStrategyName = 'first-available' | 'best-performance' | 'least-recently-used' | 'round-robin' | 'weighted-random';

/** A warm pool of VMs of one profile (`[pools.X]`). */
export interface PoolConfig {
  name: string;
  /** `pools.X.profile`; defaults to `default_profile`. */
  profile: string;
  /** `pools.X.min` / `max` / `target`: the target follows demand within [min, max]. */
  min: number;
  max: number;
  target: number;
  /** `pools.X.mode`: fresh (one allocation per VM, destroyed on release) or reuse. */
  mode: PoolMode;
  /** `pools.X.prewarm_state`: idle VMs kept running (fastest) or paused (no CPU). */
  prewarmState: PrewarmState;
  /**
   * `pools.X.rewarm`: run the profile's `warmup` again in each new pool VM
   * (a clone) before it is offered, off the request path. Under TCG a clone
   * is a new VMM process whose translation cache is empty, so its first run
   * of an interpreter is about 3x slower than the next; default true (a
   * profile without warmup gets one `true`: src/pool/rewarm.ts).
   */
  rewarm: boolean;
  refillConcurrency: number;
  strategy: PoolStrategyName;
  /** Seed of the weighted-random strategy's generator (reproducible picks). */
  strategySeed: number;
  /** Reuse mode: recycle a VM after this many allocations or this age. */
  maxUses: number;
  maxAgeMs: number;
  healthIntervalMs: number;
  /** How long an allocation waits for a VM when the pool is empty at max before POOL_EXHAUSTED. */
  allocateTimeoutMs: number;
  /**
   * `pools.X.skip_ping_within_ms`: an idle running VM whose agent answered
   * within this long (at its refill or a health check) is handed out
   * without pinging it again; 0 pings on every allocation. Absent (a
   * PoolConfig built by hand) means 0; the config file's default is 10000.
   */
  skipPingWithinMs?: number;
  /** `pools.X.lease_ms`: lease of an allocation that asks for no ttl_ms; an expired VM is destroyed (fresh) or recycled (reuse). */
  leaseMs: number;
  /** `pools.X.max_lease_ms`: the longest ttl_ms an allocate or keepalive may ask for. */
  maxLeaseMs: number;
}

/** A named VM shape: which driver boots it, from which image, how big. */
export interface Profile {
  /** The profile's name, i.e. the X of `[profiles.X]`. */
  name: string;
  /** `profiles.X.driver`; defaults to `vmm.default_driver`. */
  driver: DriverName;
  /** `profiles.X.image`; default "minimal". */
  image: string;
  /** `profiles.X.vcpus`; integer 1..32, default 1. */
  vcpus: number;
  /** `profiles.X.memory_mib`; integer 64..65536, default 256. */
  memoryMib: number;
  /** `profiles.X.kernel_args`; appended to the driver's base command line, default "". */
  kernelArgs: string;
  /** `profiles.X.boot_timeout_ms`; integer 1000..600000, default 120000. */
  bootTimeoutMs: number;
  /** `profiles.X.boot_level`; default "standard". */
  bootLevel: BootLevel;
  /** `profiles.X.network` (default false) and its egress policy; see docs/networking.md. */
  network: {
    enabled: boolean;
    /** `profiles.X.egress_allow`: checked first; default []. */
    egressAllow: string[];
    /** `profiles.X.egress_deny`: default private ranges and link-local. */
    egressDeny: string[];
    /** `profiles.X.bandwidth_mbit`: 0 = unlimited. */
    bandwidthMbit: number;
  };
  /**
   * `profiles.X.warmup`: argv run in the guest (no shell) once before the
   * profile's golden snapshot is taken, so clones start with its pages warm
   * (e.g. the interpreter loaded); default [] = none.
   */
  warmup: string[];
  /** `profiles.X.disk_mib`: size of a writable scratch disk per VM; integer 0..1048576, default 0 = none. */
  diskMib: number;
  /**
   * `profiles.X.standby_vmms`: VMM processes kept started and waiting per
   * golden snapshot of this profile, so a restore skips spawning one; integer
   * 0..8, default 1 (docs/snapshots.md#standby-vmms).
   */
  standbyVmms: number;
  /**
   * `profiles.X.target_ms`: the boot and restore time this profile promises;
   * the monitor's boot_time and restore_time alerts judge VMs against it
   * (docs/alerts.md). 0 (default) = the level's own: 2000 for `sub2second`
   * (and restores of `instant`), none otherwise. Absent in a Profile built by hand = 0.
   */
  targetMs?: number;
}

/** How an image's root filesystem is made (docs/images.md). */
export type ImageKind = 'minimal' | 'debian' | 'oci';

/** The built-in busybox image: kernel + initramfs only, no root filesystem and no settings. */
export interface MinimalImageDefinition {
  name: string;
  kind: 'minimal';
}

/** `[images.X]` with `kind = "debian"`: a Debian root filesystem made by mmdebstrap. */
export interface DebianImageDefinition {
  name: string;
  kind: 'debian';
  /** `images.X.suite`; default "bookworm". */
  suite: string;
  /** `images.X.variant`: mmdebstrap --variant; default "minbase". */
  variant: string;
  /** `images.X.packages`: extra packages (mmdebstrap --include); default []. */
  packages: string[];
  /** `images.X.mirror`; default "http://deb.debian.org/debian". */
  mirror: string;
  /** `images.X.extra_mib`: free space in the ext4 beyond the content; default 64. */
  extraMib: number;
}

/** `[images.X]` with `kind = "oci"`: the files of an OCI image (layout directory or tar). */
export interface OciImageDefinition {
  name: string;
  kind: 'oci';
  /** `images.X.source`: OCI layout directory or tar; absolute (a relative path in the file is relative to the file). */
  source: string;
  /** `images.X.ref`: which manifest of the layout (org.opencontainers.image.ref.name); "" = the only one. */
  ref: string;
  /** `images.X.extra_mib`; default 64. */
  extraMib: number;
}

export type ImageDefinition = MinimalImageDefinition | DebianImageDefinition | OciImageDefinition;

/** `[terraphim]`: the Terraphim execution API (/api/*, docs/terraphim-api.md). */
export interface TerraphimConfig {
  /**
   * `[terraphim.vm_types]`: vm_type alias -> pool or profile name. Always
   * holds the built-in aliases ("focal-optimized", "bionic-test" -> the
   * pool "default") unless the file remaps them; every target reaches a pool.
   */
  vmTypes: Record<string, string>;
  /** `terraphim.default_vm_type`: vm_type of agents' VMs; null (default) = a pool of the code's language profile, else the pool "default". */
  defaultVmType: string | null;
  /** `terraphim.history_max_entries`: executions kept per VM (oldest dropped); integer 1..1000, default 100. */
  historyMaxEntries: number;
  /** `terraphim.history_max_vms`: VMs with history kept (least recently written dropped); integer 1..4096, default 1024. */
  historyMaxVms: number;
}

export interface Config {
  /** `data_dir` / TFC_DATA_DIR; always an absolute path. */
  dataDir: string;
  /** `log_level` / TFC_LOG_LEVEL; default "info". */
  logLevel: LogLevel;
  /** `default_profile`; always names a key of `profiles`. */
  defaultProfile: string;
  vmm: {
    /** `vmm.default_driver`; default "qemu". */
    defaultDriver: DriverName;
    /**
     * `vmm.stop_timeout_ms` (deprecated name `vmm.qemu.stop_timeout_ms`):
     * how long a stop waits for the guest to power off before the VMM is
     * told to quit and then killed, for every driver; default 3000.
     */
    stopTimeoutMs: number;
    /**
     * `vmm.console_log_max_bytes`: cap of each VM's console log
     * (`VM_ID.console.log` plus its rotated `.1` together); the newest bytes
     * are kept. Default 8 MiB.
     */
    consoleLogMaxBytes: number;
    /**
     * `vmm.nice`: nice value (0..19) QEMU and plain Firecracker processes
     * start at, so the daemon's request path wins the CPU over busy guests;
     * 0 = unchanged; default 10 (docs/performance.md). Not applied through
     * Firecracker's jailer.
     */
    nice: number;
    qemu: {
      /** `vmm.qemu.binary` / TFC_QEMU_BINARY; a name looked up in PATH or a path. */
      binary: string;
      /** `vmm.qemu.accel` / TFC_QEMU_ACCEL; default "auto". */
      accel: QemuAccel;
      /** `vmm.qemu.tcg_tb_size_mib`: TCG translation buffer in MiB, 0 = QEMU's default (1024); ignored under KVM; default 128 (docs/density.md). */
      tcgTbSizeMib: number;
      /** `vmm.qemu.mem_merge`: guest RAM mergeable by the host's KSM (`-machine mem-merge`); default false. */
      memMerge: boolean;
      /** `vmm.qemu.thp`: "never" disables transparent huge pages in QEMU's process (about 2.2 MiB less per idle clone), "inherit" keeps the host's setting; default "never" (docs/density.md). */
      thp: QemuThp;
    };
    firecracker: {
      /** `vmm.firecracker.binary` / FIRECRACKER_BIN; a name looked up in PATH or a path. */
      binary: string;
      /** `vmm.firecracker.api_timeout_ms`; default 5000. */
      apiTimeoutMs: number;
      /** `vmm.firecracker.log_level`: level of Firecracker's log file in the VM's run dir; default "info". */
      logLevel: FirecrackerLogLevel;
      /** `vmm.firecracker.metrics_sink`: "file" (default) or "fifo". */
      metricsSink: FirecrackerMetricsSink;
      jailer: JailerConfig;
    };
  };
  images: {
    /** `images.kernel_package`: "auto" or an exact linux-image-*-cloud-amd64 package. */
    kernelPackage: string;
    /**
     * The built-in images ("minimal", "python", "node") merged with every
     * `[images.X]` table of the file. Images built with `tfc image build
     * --from-oci` are not here: they exist only in the data dir.
     */
    definitions: Record<string, ImageDefinition>;
  };
  /** Always contains the built-in "minimal", "python" and "node" profiles. */
  profiles: Record<string, Profile>;
  /** Always contains the built-in "default" pool. */
  pools: Record<string, PoolConfig>;
  network: {
    /** `network.range`: IPAM range of the VMs' host-side addresses; default 10.200.0.0/16. */
    range: string;
    /** `network.prefix_per_vm`: subnet size per VM; default 30. */
    prefixPerVm: number;
    /** `network.exposed_ports`: host TCP ports VMs may reach; default none. */
    exposedPorts: number[];
    /** `network.uplink`: interface for masquerading; "" = the default route's. */
    uplink: string;
    /** `network.masquerade`: NAT VM egress to the uplink address; default true. */
    masquerade: boolean;
  };
  api: {
    /** `api.listen` / TFC_LISTEN: HOST:PORT of `tfc serve`, default 127.0.0.1:7070. */
    listen: string;
    /** `api.max_exec_timeout_ms`: largest exec `timeout_ms` a client may ask for; default 600000 (10 min). */
    maxExecTimeoutMs: number;
    /** `api.request_timeout_ms`: time to receive a whole request (headers within min(this, 30 s)); default 600000. */
    requestTimeoutMs: number;
    /** `api.max_upload_bytes`: largest file upload (PUT /v1/vms/{id}/files); default 1 GiB. */
    maxUploadBytes: number;
    /** `api.max_download_bytes`: largest file download (GET /v1/vms/{id}/files); default 1 GiB. */
    maxDownloadBytes: number;
  };
  terraphim: TerraphimConfig;
  /** `[security]`: the privilege model (docs/security.md). */
  security: {
    /** `security.drop_privileges`: QEMU under -sandbox and -runas, Firecracker jailed, each VM its own uid; default true. */
    dropPrivileges: boolean;
    /** `security.uid_range_start`: first uid (and gid) handed to VMs; default 2000000000. */
    uidRangeStart: number;
    /** `security.uid_count`: how many uids the range holds (at most that many live VMs per data dir); default 65536. */
    uidCount: number;
  };
  /** `[alerts]`; absent in a Config built by hand = the defaults (enabled, no webhooks). */
  alerts?: AlertsConfig;
  /** `[cluster]`: cluster mode (docs/cluster.md); absent = a single host. */
  cluster?: import('../cluster/config.js').ClusterConfig;
}

/** `[alerts.rules.NAME]`: overrides of one monitor rule's defaults (docs/alerts.md). */
export interface AlertRuleOverride {
  threshold?: number;
  forMs?: number;
  enabled?: boolean;
}

/** One `[[alerts.webhooks]]`: where events are POSTed, signed with HMAC-SHA256. */
export interface AlertWebhookConfig {
  /** `url`: http:// or https://. */
  url: string;
  /** `secret`: the HMAC key; null when none (or read from `secret_env` at start). */
  secret: string | null;
  /** `secret_env`: environment variable holding the HMAC key; null when none. */
  secretEnv: string | null;
  /** `events`: event types delivered; default ["alert"]. */
  events: string[];
  /** `timeout_ms`: per attempt; default 5000. */
  timeoutMs: number;
  /** `max_attempts`: attempts per event (network errors, 5xx and 429 are retried); default 5. */
  maxAttempts: number;
  /** `queue_size`: events waiting for delivery (the oldest is dropped when full); default 256. */
  queueSize: number;
}

/** `[alerts]`: the performance monitor of `tfc serve` (docs/alerts.md). */
export interface AlertsConfig {
  /** `alerts.enabled`; default true. */
  enabled: boolean;
  /** `alerts.eval_interval_ms`: how often rules are evaluated; default 1000. */
  evalIntervalMs: number;
  /** `[alerts.rules.NAME]`, keyed by rule name; rules not listed keep their defaults. */
  rules: Record<string, AlertRuleOverride>;
  webhooks: AlertWebhookConfig[];
}

/** Where one effective value came from. */
export type ValueSource = { kind: 'default' } | { kind: 'file'; file: string; line?: number } | { kind: 'env'; env: string };

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file that was read, or null when only defaults (and env) apply. */
  file: string | null;
  /** Keyed by dotted snake_case key, e.g. `profiles.minimal.memory_mib`; one entry per leaf value. */
  sources: Record<string, ValueSource>;
}

/**
 * One problem found while validating; `details.errors` of a ConfigInvalidError
 * holds these. `key` is absent only for TOML syntax errors, `env` is set when
 * the bad value came from an environment variable instead of the file.
 */
export interface ConfigProblem {
  key?: string;
  value?: unknown;
  line?: number;
  column?: number;
  env?: string;
  message: string;
}
