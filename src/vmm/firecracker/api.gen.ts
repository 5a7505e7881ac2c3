// Generated, do not edit; run npm run generate:firecracker
// (scripts/generate-firecracker-types.mjs) after changing vendor/firecracker/firecracker.yaml.
// Source: Firecracker API 1.17.0-dev, spec SHA-256 47cd2801deb84b4fc38b9dcc85fce494b1f93074caf377dfc59cb7d410fb00f9.
/* eslint-disable */

/** The `info.version` of the spec these types were generated from. */
export const FIRECRACKER_API_VERSION = '1.17.0-dev';

// ---- Definitions ----

/** Modifier for an ARM register (aarch64) */
export interface ArmRegisterModifier {
  /** 64-bit register address as hex, binary, or decimal string (e.g., "0x0", "0b0", "0") */
  addr: string;
  /**
   * 128-bit bitmap string defining which bits to modify. Format is "0b" followed by up to 128 characters where '0' = clear bit, '1' = set bit, 'x' = don't modify. Underscores can be used for readability. Example "0b0000000000000000000000000000000000000000000000000000000000000001"
   */
  bitmap: string;
}

/** Balloon device descriptor. */
export interface Balloon {
  /** Target balloon size in MiB. */
  amount_mib: number;
  /** Whether the balloon should deflate when the guest has memory pressure. */
  deflate_on_oom: boolean;
  /**
   * Interval in seconds between refreshing statistics. A non-zero value will enable the statistics. Defaults to 0.
   */
  stats_polling_interval_s?: number;
  /** Whether the free page hinting feature is enabled. */
  free_page_hinting?: boolean;
  /** Whether the free page reporting feature is enabled. */
  free_page_reporting?: boolean;
}

/** Describes the free page hinting status. */
export interface BalloonHintingStatus {
  /** The last command issued by the host. */
  host_cmd: number;
  /** The last command provided by the guest. */
  guest_cmd?: number;
}

/** Command used to start a free page hinting run. */
export interface BalloonStartCmd {
  /** If Firecracker should automatically acknowledge when the guest submits a done cmd. */
  acknowledge_on_stop?: boolean;
}

/** Describes the balloon device statistics. */
export interface BalloonStats {
  /** Target number of pages the device aims to hold. */
  target_pages: number;
  /** Actual number of pages the device is holding. */
  actual_pages: number;
  /** Target amount of memory (in MiB) the device aims to hold. */
  target_mib: number;
  /** Actual amount of memory (in MiB) the device is holding. */
  actual_mib: number;
  /** The amount of memory that has been swapped in (in bytes). */
  swap_in?: number;
  /** The amount of memory that has been swapped out to disk (in bytes). */
  swap_out?: number;
  /** The number of major page faults that have occurred. */
  major_faults?: number;
  /** The number of minor page faults that have occurred. */
  minor_faults?: number;
  /** The amount of memory not being used for any purpose (in bytes). */
  free_memory?: number;
  /** The total amount of memory available (in bytes). */
  total_memory?: number;
  /**
   * An estimate of how much memory is available (in bytes) for starting new applications, without pushing the system to swap.
   */
  available_memory?: number;
  /**
   * The amount of memory, in bytes, that can be quickly reclaimed without additional I/O. Typically these pages are used for caching files from disk.
   */
  disk_caches?: number;
  /** The number of successful hugetlb page allocations in the guest. */
  hugetlb_allocations?: number;
  /** The number of failed hugetlb page allocations in the guest. */
  hugetlb_failures?: number;
  /** OOM killer invocations, indicating critical memory pressure. */
  oom_kill?: number;
  /**
   * Counter of Allocation enter a slow path to gain more memory page. The reclaim/scan metrics can reveal what is actually happening.
   */
  alloc_stall?: number;
  /** Amount of memory scanned asynchronously. */
  async_scan?: number;
  /** Amount of memory scanned directly. */
  direct_scan?: number;
  /** Amount of memory reclaimed asynchronously. */
  async_reclaim?: number;
  /** Amount of memory reclaimed directly. */
  direct_reclaim?: number;
}

/**
 * Update the statistics polling interval, with the first statistics update scheduled immediately. Statistics cannot be turned on/off after boot.
 */
export interface BalloonStatsUpdate {
  /** Interval in seconds between refreshing statistics. */
  stats_polling_interval_s: number;
}

/** Balloon device descriptor. */
export interface BalloonUpdate {
  /** Target balloon size in MiB. */
  amount_mib: number;
}

/** Boot source descriptor. */
export interface BootSource {
  /** Kernel boot arguments */
  boot_args?: string;
  /** Host level path to the initrd image used to boot the guest */
  initrd_path?: string;
  /** Host level path to the kernel image used to boot the guest */
  kernel_image_path: string;
}

/**
 * The CPU configuration template defines a set of bit maps as modifiers of flags accessed by register to be disabled/enabled for the microvm.
 */
export interface CpuConfig {
  /** A collection of KVM capabilities to be added or removed (both x86_64 and aarch64) */
  kvm_capabilities?: string[];
  /** A collection of CPUID leaf modifiers (x86_64 only) */
  cpuid_modifiers?: CpuidLeafModifier[];
  /** A collection of model specific register modifiers (x86_64 only) */
  msr_modifiers?: MsrModifier[];
  /** A collection of register modifiers (aarch64 only) */
  reg_modifiers?: ArmRegisterModifier[];
  /** A collection of vCPU features to be modified (aarch64 only) */
  vcpu_features?: VcpuFeatures[];
}

/**
 * The CPU Template defines a set of flags to be disabled from the microvm so that the features exposed to the guest are the same as in the selected instance type. This parameter has been deprecated and it will be removed in future Firecracker release.
 * @default "None"
 */
export type CpuTemplate = 'C3' | 'T2' | 'T2S' | 'T2CL' | 'T2A' | 'V1N1' | 'None';

/** Modifier for a CPUID leaf and subleaf (x86_64) */
export interface CpuidLeafModifier {
  /** CPUID leaf index as hex, binary, or decimal string (e.g., "0x0", "0b0", "0")) */
  leaf: string;
  /** CPUID subleaf index as hex, binary, or decimal string (e.g., "0x0", "0b0", "0") */
  subleaf: string;
  /** KVM feature flags for this leaf-subleaf */
  flags: number;
  /** Register modifiers for this CPUID leaf */
  modifiers: CpuidRegisterModifier[];
}

/** Modifier for a specific CPUID register within a leaf (x86_64) */
export interface CpuidRegisterModifier {
  /** Target CPUID register name */
  register: 'eax' | 'ebx' | 'ecx' | 'edx';
  /**
   * 32-bit bitmap string defining which bits to modify. Format is "0b" followed by 32 characters where '0' = clear bit, '1' = set bit, 'x' = don't modify. Example "0b00000000000000000000000000000001" or "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxx0001"
   */
  bitmap: string;
}

export interface Drive {
  drive_id: string;
  /**
   * Represents the unique id of the boot partition of this device. It is optional and it will be taken into account only if the is_root_device field is true.
   */
  partuuid?: string;
  is_root_device: boolean;
  /**
   * Represents the caching strategy for the block device.
   * @default "Unsafe"
   */
  cache_type?: 'Unsafe' | 'Writeback';
  /**
   * Is block read only. This field is required for virtio-block config and should be omitted for vhost-user-block configuration.
   */
  is_read_only?: boolean;
  /**
   * Host level path for the guest drive. This field is required for virtio-block config and should be omitted for vhost-user-block configuration.
   */
  path_on_host?: string;
  rate_limiter?: RateLimiter;
  /**
   * Type of the IO engine used by the device. "Async" is supported on host kernels newer than 5.10.51. This field is optional for virtio-block config and should be omitted for vhost-user-block configuration.
   * @default "Sync"
   */
  io_engine?: 'Sync' | 'Async';
  /**
   * Path to the socket of vhost-user-block backend. This field is required for vhost-user-block config should be omitted for virtio-block configuration.
   */
  socket?: string;
}

/** Defines an entropy device. */
export interface EntropyDevice {
  rate_limiter?: RateLimiter;
}

/** Spec definition `Error`, renamed so it does not shadow the global `Error`. */
export interface FirecrackerFault {
  /** A description of the error condition */
  fault_message?: string;
}

/** Describes the Firecracker version. */
export interface FirecrackerVersion {
  /** Firecracker build version. */
  firecracker_version: string;
}

export interface FullVmConfiguration {
  balloon?: Balloon;
  /** Configurations for all block devices. */
  drives?: Drive[];
  'boot-source'?: BootSource;
  'cpu-config'?: CpuConfig;
  logger?: Logger;
  'machine-config'?: MachineConfiguration;
  metrics?: Metrics;
  'memory-hotplug'?: MemoryHotplugConfig;
  'mmds-config'?: MmdsConfig;
  /** Configurations for all net devices. */
  'network-interfaces'?: NetworkInterface[];
  /** Configurations for all pmem devices. */
  pmem?: Pmem[];
  vsock?: Vsock;
  entropy?: EntropyDevice;
}

/** Variant wrapper containing the real action. */
export interface InstanceActionInfo {
  /** Enumeration indicating what type of action is contained in the payload */
  action_type: 'FlushMetrics' | 'InstanceStart' | 'SendCtrlAltDel';
}

/** Describes MicroVM instance information. */
export interface InstanceInfo {
  /** Application name. */
  app_name: string;
  /** MicroVM / instance ID. */
  id: string;
  /**
   * The current detailed state (Not started, Running, Paused) of the Firecracker instance. This value is read-only for the control-plane.
   */
  state: 'Not started' | 'Running' | 'Paused';
  /** MicroVM hypervisor build version. */
  vmm_version: string;
}

/** Describes the configuration option for the logging capability. */
export interface Logger {
  /**
   * Set the level. The possible values are case-insensitive.
   * @default "Info"
   */
  level?: 'Error' | 'Warning' | 'Info' | 'Debug' | 'Trace' | 'Off';
  /** Path to the named pipe or file for the human readable log output. */
  log_path?: string;
  /**
   * Whether or not to output the level in the logs.
   * @default false
   */
  show_level?: boolean;
  /**
   * Whether or not to include the file path and line number of the log's origin.
   * @default false
   */
  show_log_origin?: boolean;
  /** The module path to filter log messages by. */
  module?: string;
}

/**
 * Describes the number of vCPUs, memory size, SMT capabilities, huge page configuration and the CPU template.
 */
export interface MachineConfiguration {
  cpu_template?: CpuTemplate;
  /**
   * Flag for enabling/disabling simultaneous multithreading. Can be enabled only on x86.
   * @default false
   */
  smt?: boolean;
  /** Memory size of VM */
  mem_size_mib: number;
  /**
   * Enable dirty page tracking. If this is enabled, then incremental guest memory snapshots can be created. These belong to diff snapshots, which contain, besides the microVM state, only the memory dirtied since a previous snapshot. Full snapshots each contain a full copy of the guest memory.
   * @default false
   */
  track_dirty_pages?: boolean;
  /**
   * Number of vCPUs (either 1 or an even number)
   * Range: 1 to 32.
   */
  vcpu_count: number;
  /**
   * Which huge pages configuration should be used to back guest memory. "None" uses regular 4K pages. "Transparent" enables THP via madvise(MADV_HUGEPAGE). "2M" uses explicit hugetlbfs 2MB pages.
   * @default "None"
   */
  huge_pages?: 'None' | 'Transparent' | '2M';
}

export interface MemoryBackend {
  backend_type: 'File' | 'Uffd';
  /**
   * Based on 'backend_type' it is either 1) Path to the file that contains the guest memory to be loaded 2) Path to the UDS where a process is listening for a UFFD initialization control payload and open file descriptor that it can use to serve this process's guest memory page faults
   */
  backend_path: string;
}

/** The configuration of the hotpluggable memory device (virtio-mem) */
export interface MemoryHotplugConfig {
  /**
   * Total size of the hotpluggable memory in MiB.
   * Maximum: 4294967295.
   */
  total_size_mib?: number;
  /**
   * Slot size for the hotpluggable memory in MiB. This will determine the granularity of hot-plug memory from the host. Refer to the device documentation on how to tune this value.
   * Range: 128 to 4294967295.
   * @default 128
   */
  slot_size_mib?: number;
  /**
   * (Logical) Block size for the hotpluggable memory in MiB. This will determine the logical granularity of hot-plug memory for the guest. Refer to the device documentation on how to tune this value.
   * Range: 2 to 4294967295.
   * @default 2
   */
  block_size_mib?: number;
}

/** An update to the size of the hotpluggable memory region. */
export interface MemoryHotplugSizeUpdate {
  /**
   * New target region size.
   * Range: 0 to 4294967295.
   */
  requested_size_mib?: number;
}

/** The status of the hotpluggable memory device (virtio-mem) */
export interface MemoryHotplugStatus {
  /** Total size of the hotpluggable memory in MiB. */
  total_size_mib?: number;
  /** Slot size for the hotpluggable memory in MiB. */
  slot_size_mib?: number;
  /** (Logical) Block size for the hotpluggable memory in MiB. */
  block_size_mib?: number;
  /** Plugged size for the hotpluggable memory in MiB. */
  plugged_size_mib?: number;
  /** Requested size for the hotpluggable memory in MiB. */
  requested_size_mib?: number;
}

/** Describes the configuration option for the metrics capability. */
export interface Metrics {
  /** Path to the named pipe or file where the JSON-formatted metrics are flushed. */
  metrics_path: string;
  /**
   * Whether to emit the microVM instance id (the value passed to the jailer "--id") as a top-level "id" field on each metrics line.
   * @default false
   */
  emit_id?: boolean;
  /** Operator-defined key-value pairs emitted under a top-level "properties" field on each metrics line. */
  properties?: { [key: string]: string };
}

/** Defines the MMDS configuration. */
export interface MmdsConfig {
  /**
   * Enumeration indicating the MMDS version to be configured.
   * @default "V1"
   */
  version?: 'V1' | 'V2';
  /**
   * List of the network interface IDs capable of forwarding packets to the MMDS. Network interface IDs mentioned must be valid at the time of this request. The net device model will reply to HTTP GET requests sent to the MMDS address via the interfaces mentioned. In this case, both ARP requests and TCP segments heading to `ipv4_address` are intercepted by the device model, and do not reach the associated TAP device.
   */
  network_interfaces: string[];
  /**
   * A valid IPv4 link-local address.
   * Format: `169.254.([1-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4]).([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])`.
   * @default "169.254.169.254"
   */
  ipv4_address?: string;
  /**
   * MMDS operates compatibly with EC2 IMDS (i.e. responds "text/plain" content regardless of Accept header in requests).
   * @default false
   */
  imds_compat?: boolean;
}

/** Describes the contents of MMDS in JSON format. */
export interface MmdsContentsObject {
  [key: string]: unknown;
}

/** Modifier for a model specific register (x86_64) */
export interface MsrModifier {
  /** 32-bit MSR address as hex, binary, or decimal string (e.g., "0x10a", "0b100001010", "266") */
  addr: string;
  /**
   * 64-bit bitmap string defining which bits to modify. Format is "0b" followed by 64 characters where '0' = clear bit, '1' = set bit, 'x' = don't modify. Underscores can be used for readability. Example "0b0000000000000000000000000000000000000000000000000000000000000001"
   */
  bitmap: string;
}

/** Defines a network interface. */
export interface NetworkInterface {
  guest_mac?: string;
  /** Host level path for the guest network interface */
  host_dev_name: string;
  iface_id: string;
  /**
   * MTU to advertise to the guest via VIRTIO_NET_F_MTU. When set, a compatible guest driver will configure the interface with this MTU. When absent, VIRTIO_NET_F_MTU is not advertised and the guest uses its default MTU.
   * Range: 68 to 65535.
   */
  mtu?: number;
  rx_rate_limiter?: RateLimiter;
  tx_rate_limiter?: RateLimiter;
}

/** Allows for changing the backing TAP device of a network interface during snapshot restore. */
export interface NetworkOverride {
  /** The name of the interface to modify */
  iface_id: string;
  /** The new host device of the interface */
  host_dev_name: string;
}

export interface PartialDrive {
  drive_id: string;
  /**
   * Host level path for the guest drive. This field is optional for virtio-block config and should be omitted for vhost-user-block configuration.
   */
  path_on_host?: string;
  rate_limiter?: RateLimiter;
}

/**
 * Defines a partial network interface structure, used to update the rate limiters for that interface, after microvm start.
 */
export interface PartialNetworkInterface {
  iface_id: string;
  rx_rate_limiter?: RateLimiter;
  tx_rate_limiter?: RateLimiter;
}

/**
 * Defines a partial pmem device structure, used to update the rate limiter for that device, after microvm start.
 */
export interface PartialPmem {
  id: string;
  rate_limiter?: RateLimiter;
}

export interface Pmem {
  /** Identificator for this device. */
  id: string;
  /** Host level path for the virtio-pmem device to use as a backing file. */
  path_on_host: string;
  /**
   * Flag to make this device be the root device for VM boot. Setting this flag will fail if there is another device configured to be a root device already.
   */
  root_device?: boolean;
  /** Flag to map backing file in read-only mode. */
  read_only?: boolean;
  rate_limiter?: RateLimiter;
}

/**
 * Defines an IO rate limiter with independent bytes/s and ops/s limits. Limits are defined by configuring each of the _bandwidth_ and _ops_ token buckets. This field is optional for virtio-block config and should be omitted for vhost-user-block configuration.
 */
export interface RateLimiter {
  /** Token bucket with bytes as tokens */
  bandwidth?: TokenBucket;
  /** Token bucket with operations as tokens */
  ops?: TokenBucket;
}

/** The configuration of the serial device */
export interface SerialDevice {
  /** Path to a file or named pipe on the host to which serial output should be written. */
  serial_out_path?: string;
  /**
   * Optional token bucket for rate limiting serial console output bandwidth. When present, guest writes to the serial port that exceed the configured rate are silently dropped and counted in the `uart.rate_limiter_dropped_bytes` metric. When absent (the default), serial output is not rate-limited.
   */
  rate_limiter?: TokenBucket;
}

export interface SnapshotCreateParams {
  /** Path to the file that will contain the guest memory. */
  mem_file_path: string;
  /** Path to the file that will contain the microVM state. */
  snapshot_path: string;
  /** Type of snapshot to create. It is optional and by default, a full snapshot is created. */
  snapshot_type?: 'Full' | 'Diff';
}

/**
 * Defines the configuration used for handling snapshot resume. Exactly one of the two `mem_*` fields must be present in the body of the request.
 */
export interface SnapshotLoadParams {
  /** (Deprecated) Enable dirty page tracking to improve space efficiency of diff snapshots */
  enable_diff_snapshots?: boolean;
  /** Enable dirty page tracking to improve space efficiency of diff snapshots */
  track_dirty_pages?: boolean;
  /**
   * Path to the file that contains the guest memory to be loaded. It is only allowed if `mem_backend` is not present. This parameter has been deprecated and it will be removed in future Firecracker release.
   */
  mem_file_path?: string;
  /**
   * Configuration for the backend that handles memory load. If this field is specified, `mem_file_path` is forbidden. Either `mem_backend` or `mem_file_path` must be present at a time.
   */
  mem_backend?: MemoryBackend;
  /** Path to the file that contains the microVM state to be loaded. */
  snapshot_path: string;
  /** When set to true, the vm is also resumed if the snapshot load is successful. */
  resume_vm?: boolean;
  /** Network host device names to override */
  network_overrides?: NetworkOverride[];
  /**
   * Overrides the vsock device's UDS path on snapshot restore. This is useful for restoring a snapshot with a different socket path than the one used when the snapshot was created. For example, when the original socket path is no longer available or when deploying to a different environment.
   */
  vsock_override?: VsockOverride;
  /**
   * [x86_64 only] When set to true, passes KVM_CLOCK_REALTIME to KVM_SET_CLOCK on restore, advancing kvmclock by the wall-clock time elapsed since the snapshot was taken. When false (default), kvmclock resumes from where it was at snapshot time. This option may be extended to other clock sources and CPU architectures in the future.
   */
  clock_realtime?: boolean;
  /**
   * Selects the huge pages configuration for the restored microVM. Snapshot reuses the value serialized in the snapshot and is the default when this field is omitted; None uses the host's default memory-mapping behavior. Explicit hugetlbfs (`2M`) pages require a UFFD memory backend. With UFFD, the effectiveness of transparent huge pages may be limited.
   */
  huge_pages?: 'Snapshot' | 'None' | 'Transparent' | '2M';
}

/**
 * Defines a token bucket with a maximum capacity (size), an initial burst size (one_time_burst) and an interval for refilling purposes (refill_time). The refill-rate is derived from size and refill_time, and it is the constant rate at which the tokens replenish. The refill process only starts happening after the initial burst budget is consumed. Consumption from the token bucket is unbounded in speed which allows for bursts bound in size by the amount of tokens available. Once the token bucket is empty, consumption speed is bound by the refill_rate.
 */
export interface TokenBucket {
  /**
   * The initial size of a token bucket.
   * Minimum: 0.
   */
  one_time_burst?: number;
  /**
   * The amount of milliseconds it takes for the bucket to refill.
   * Minimum: 0.
   */
  refill_time: number;
  /**
   * The total number of tokens this bucket can hold.
   * Minimum: 0.
   */
  size: number;
}

/** vCPU feature modifier (aarch64) */
export interface VcpuFeatures {
  /** Index in the kvm_vcpu_init.features array */
  index: number;
  /**
   * 32-bit bitmap string defining which bits to modify. Format is "0b" followed by 32 characters where '0' = clear bit, '1' = set bit, 'x' = don't modify. Example "0b00000000000000000000000001100000"
   */
  bitmap: string;
}

/** Defines the microVM running state. It is especially useful in the snapshotting context. */
export interface Vm {
  state: 'Paused' | 'Resumed';
}

/**
 * Defines a vsock device, backed by a set of Unix Domain Sockets, on the host side. For host-initiated connections, Firecracker will be listening on the Unix socket identified by the path `uds_path`. Firecracker will create this socket, bind and listen on it. Host-initiated connections will be performed by connection to this socket and issuing a connection forwarding request to the desired guest-side vsock port (i.e. `CONNECT 52\n`, to connect to port 52). For guest-initiated connections, Firecracker will expect host software to be bound and listening on Unix sockets at `uds_path_<PORT>`. E.g. "/path/to/host_vsock.sock_52" for port number 52.
 */
export interface Vsock {
  /**
   * Guest Vsock CID
   * Minimum: 3.
   */
  guest_cid: number;
  /** Path to UNIX domain socket, used to proxy vsock connections. */
  uds_path: string;
  /** This parameter has been deprecated and it will be removed in future Firecracker release. */
  vsock_id?: string;
}

/** Allows for changing the backing Unix Domain Socket of a vsock device during snapshot restore. */
export interface VsockOverride {
  /** The new path for the backing Unix Domain Socket. */
  uds_path: string;
}

// ---- Operations ----

/** Types of every operation, keyed by operationId. `body` is the request body, `response` the success body (void for 204). */
export interface FirecrackerOperations {
  /** GET / - Returns general information about an instance. */
  describeInstance: {
    method: 'GET';
    path: '/';
    pathParams: Record<string, never>;
    body: undefined;
    bodyRequired: false;
    response: InstanceInfo;
  };
  /** PUT /actions - Creates a synchronous action. */
  createSyncAction: {
    method: 'PUT';
    path: '/actions';
    pathParams: Record<string, never>;
    body: InstanceActionInfo;
    bodyRequired: true;
    response: void;
  };
  /** GET /balloon - Returns the current balloon device configuration. */
  describeBalloonConfig: {
    method: 'GET';
    path: '/balloon';
    pathParams: Record<string, never>;
    body: undefined;
    bodyRequired: false;
    response: Balloon;
  };
  /** PUT /balloon - Creates or updates a balloon device. */
  putBalloon: {
    method: 'PUT';
    path: '/balloon';
    pathParams: Record<string, never>;
    body: Balloon;
    bodyRequired: true;
    response: void;
  };
  /** PATCH /balloon - Updates a balloon device. */
  patchBalloon: {
    method: 'PATCH';
    path: '/balloon';
    pathParams: Record<string, never>;
    body: BalloonUpdate;
    bodyRequired: true;
    response: void;
  };
  /** PATCH /balloon/hinting/start - Starts a free page hinting run only if enabled pre-boot. */
  startBalloonHinting: {
    method: 'PATCH';
    path: '/balloon/hinting/start';
    pathParams: Record<string, never>;
    body: BalloonStartCmd;
    bodyRequired: false;
    response: void;
  };
  /** GET /balloon/hinting/status - Returns the balloon hinting statistics, only if enabled pre-boot. */
  describeBalloonHinting: {
    method: 'GET';
    path: '/balloon/hinting/status';
    pathParams: Record<string, never>;
    body: undefined;
    bodyRequired: false;
    response: BalloonHintingStatus;
  };
  /** PATCH /balloon/hinting/stop - Stops a free page hinting run only if enabled pre-boot. */
  stopBalloonHinting: {
    method: 'PATCH';
    path: '/balloon/hinting/stop';
    pathParams: Record<string, never>;
    body: undefined;
    bodyRequired: false;
    response: void;
  };
  /** GET /balloon/statistics - Returns the latest balloon device statistics, only if enabled pre-boot. */
  describeBalloonStats: {
    method: 'GET';
    path: '/balloon/statistics';
    pathParams: Record<string, never>;
    body: undefined;
    bodyRequired: false;
    response: BalloonStats;
  };
  /** PATCH /balloon/statistics - Updates a balloon device statistics polling interval. */
  patchBalloonStatsInterval: {
    method: 'PATCH';
    path: '/balloon/statistics';
    pathParams: Record<string, never>;
    body: BalloonStatsUpdate;
    bodyRequired: true;
    response: void;
  };
  /** PUT /boot-source - Creates or updates the boot source. Pre-boot only. */
  putGuestBootSource: {
    method: 'PUT';
    path: '/boot-source';
    pathParams: Record<string, never>;
    body: BootSource;
    bodyRequired: true;
    response: void;
  };
  /** PUT /cpu-config - Configures CPU features flags for the vCPUs of the guest VM. Pre-boot only. */
  putCpuConfiguration: {
    method: 'PUT';
    path: '/cpu-config';
    pathParams: Record<string, never>;
    body: CpuConfig;
    bodyRequired: false;
    response: void;
  };
  /** PUT /drives/{drive_id} - Creates or updates a drive. Pre-boot only. */
  putGuestDriveByID: {
    method: 'PUT';
    path: '/drives/{drive_id}';
    pathParams: { drive_id: string };
    body: Drive;
    bodyRequired: true;
    response: void;
  };
  /** PATCH /drives/{drive_id} - Updates the properties of a drive. Post-boot only. */
  patchGuestDriveByID: {
    method: 'PATCH';
    path: '/drives/{drive_id}';
    pathParams: { drive_id: string };
    body: PartialDrive;
    bodyRequired: true;
    response: void;
  };
  /** PUT /entropy - Creates an entropy device. Pre-boot only. */
  putEntropyDevice: {
    method: 'PUT';
    path: '/entropy';
    pathParams: Record<string, never>;
    body: EntropyDevice;
    bodyRequired: true;
    response: void;
  };
  /** GET /hotplug/memory - Retrieves the status of the hotpluggable memory */
  getMemoryHotplug: {
    method: 'GET';
    path: '/hotplug/memory';
    pathParams: Record<string, never>;
    body: undefined;
    bodyRequired: false;
    response: MemoryHotplugStatus;
  };
  /** PUT /hotplug/memory - Configures the hotpluggable memory */
  putMemoryHotplug: {
    method: 'PUT';
    path: '/hotplug/memory';
    pathParams: Record<string, never>;
    body: MemoryHotplugConfig;
    bodyRequired: true;
    response: void;
  };
  /** PATCH /hotplug/memory - Updates the size of the hotpluggable memory region */
  patchMemoryHotplug: {
    method: 'PATCH';
    path: '/hotplug/memory';
    pathParams: Record<string, never>;
    body: MemoryHotplugSizeUpdate;
    bodyRequired: true;
    response: void;
  };
  /** PUT /logger - Initializes the logger by specifying a named pipe or a file for the logs output. */
  putLogger: {
    method: 'PUT';
    path: '/logger';
    pathParams: Record<string, never>;
    body: Logger;
    bodyRequired: true;
    response: void;
  };
  /** GET /machine-config - Gets the machine configuration of the VM. */
  getMachineConfiguration: {
    method: 'GET';
    path: '/machine-config';
    pathParams: Record<string, never>;
    body: undefined;
    bodyRequired: false;
    response: MachineConfiguration;
  };
  /** PUT /machine-config - Updates the Machine Configuration of the VM. Pre-boot only. */
  putMachineConfiguration: {
    method: 'PUT';
    path: '/machine-config';
    pathParams: Record<string, never>;
    body: MachineConfiguration;
    bodyRequired: false;
    response: void;
  };
  /** PATCH /machine-config - Partially updates the Machine Configuration of the VM. Pre-boot only. */
  patchMachineConfiguration: {
    method: 'PATCH';
    path: '/machine-config';
    pathParams: Record<string, never>;
    body: MachineConfiguration;
    bodyRequired: false;
    response: void;
  };
  /**
   * PUT /metrics - Initializes the metrics system by specifying a named pipe or a file for the metrics output.
   */
  putMetrics: {
    method: 'PUT';
    path: '/metrics';
    pathParams: Record<string, never>;
    body: Metrics;
    bodyRequired: true;
    response: void;
  };
  /** GET /mmds - Get the MMDS data store. */
  getMmds: {
    method: 'GET';
    path: '/mmds';
    pathParams: Record<string, never>;
    body: undefined;
    bodyRequired: false;
    response: { [key: string]: unknown };
  };
  /** PUT /mmds - Creates a MMDS (Microvm Metadata Service) data store. */
  putMmds: {
    method: 'PUT';
    path: '/mmds';
    pathParams: Record<string, never>;
    body: MmdsContentsObject;
    bodyRequired: false;
    response: void;
  };
  /** PATCH /mmds - Updates the MMDS data store. */
  patchMmds: {
    method: 'PATCH';
    path: '/mmds';
    pathParams: Record<string, never>;
    body: MmdsContentsObject;
    bodyRequired: false;
    response: void;
  };
  /** PUT /mmds/config - Set MMDS configuration. Pre-boot only. */
  putMmdsConfig: {
    method: 'PUT';
    path: '/mmds/config';
    pathParams: Record<string, never>;
    body: MmdsConfig;
    bodyRequired: true;
    response: void;
  };
  /** PUT /network-interfaces/{iface_id} - Creates a network interface. Pre-boot only. */
  putGuestNetworkInterfaceByID: {
    method: 'PUT';
    path: '/network-interfaces/{iface_id}';
    pathParams: { iface_id: string };
    body: NetworkInterface;
    bodyRequired: true;
    response: void;
  };
  /**
   * PATCH /network-interfaces/{iface_id} - Updates the rate limiters applied to a network interface. Post-boot only.
   */
  patchGuestNetworkInterfaceByID: {
    method: 'PATCH';
    path: '/network-interfaces/{iface_id}';
    pathParams: { iface_id: string };
    body: PartialNetworkInterface;
    bodyRequired: true;
    response: void;
  };
  /** PUT /pmem/{id} - Creates or updates a pmem device. Pre-boot only. */
  putGuestPmemByID: {
    method: 'PUT';
    path: '/pmem/{id}';
    pathParams: { id: string };
    body: Pmem;
    bodyRequired: true;
    response: void;
  };
  /** PATCH /pmem/{id} - Updates the rate limiter of a pmem device. Post-boot only. */
  patchGuestPmemByID: {
    method: 'PATCH';
    path: '/pmem/{id}';
    pathParams: { id: string };
    body: PartialPmem;
    bodyRequired: true;
    response: void;
  };
  /** PUT /serial - Configures the serial console */
  putSerialDevice: {
    method: 'PUT';
    path: '/serial';
    pathParams: Record<string, never>;
    body: SerialDevice;
    bodyRequired: true;
    response: void;
  };
  /** PUT /snapshot/create - Creates a full or diff snapshot. Post-boot only. */
  createSnapshot: {
    method: 'PUT';
    path: '/snapshot/create';
    pathParams: Record<string, never>;
    body: SnapshotCreateParams;
    bodyRequired: true;
    response: void;
  };
  /** PUT /snapshot/load - Loads a snapshot. Pre-boot only. */
  loadSnapshot: {
    method: 'PUT';
    path: '/snapshot/load';
    pathParams: Record<string, never>;
    body: SnapshotLoadParams;
    bodyRequired: true;
    response: void;
  };
  /** GET /version - Gets the Firecracker version. */
  getFirecrackerVersion: {
    method: 'GET';
    path: '/version';
    pathParams: Record<string, never>;
    body: undefined;
    bodyRequired: false;
    response: FirecrackerVersion;
  };
  /** PATCH /vm - Updates the microVM state. */
  patchVm: {
    method: 'PATCH';
    path: '/vm';
    pathParams: Record<string, never>;
    body: Vm;
    bodyRequired: true;
    response: void;
  };
  /** GET /vm/config - Gets the full VM configuration. */
  getExportVmConfig: {
    method: 'GET';
    path: '/vm/config';
    pathParams: Record<string, never>;
    body: undefined;
    bodyRequired: false;
    response: FullVmConfiguration;
  };
  /** PUT /vsock - Creates/updates a vsock device. Pre-boot only. */
  putGuestVsock: {
    method: 'PUT';
    path: '/vsock';
    pathParams: Record<string, never>;
    body: Vsock;
    bodyRequired: true;
    response: void;
  };
}

export type FirecrackerOperationId = keyof FirecrackerOperations;
export type FirecrackerHttpMethod = 'GET' | 'PUT' | 'PATCH';

/** Runtime description of one operation; `bodyType`/`responseType` name a definition, 'inline' or null. */
export interface FirecrackerOperationInfo {
  readonly method: FirecrackerHttpMethod;
  readonly path: string;
  readonly pathParams: readonly string[];
  readonly bodyType: string | null;
  readonly bodyRequired: boolean;
  readonly successStatus: number;
  readonly responseType: string | null;
}

/** Every operation of the spec, keyed by operationId. */
export const FIRECRACKER_OPERATIONS = {
  describeInstance: {
    method: 'GET',
    path: '/',
    pathParams: [],
    bodyType: null,
    bodyRequired: false,
    successStatus: 200,
    responseType: 'InstanceInfo',
  },
  createSyncAction: {
    method: 'PUT',
    path: '/actions',
    pathParams: [],
    bodyType: 'InstanceActionInfo',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  describeBalloonConfig: {
    method: 'GET',
    path: '/balloon',
    pathParams: [],
    bodyType: null,
    bodyRequired: false,
    successStatus: 200,
    responseType: 'Balloon',
  },
  putBalloon: {
    method: 'PUT',
    path: '/balloon',
    pathParams: [],
    bodyType: 'Balloon',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  patchBalloon: {
    method: 'PATCH',
    path: '/balloon',
    pathParams: [],
    bodyType: 'BalloonUpdate',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  startBalloonHinting: {
    method: 'PATCH',
    path: '/balloon/hinting/start',
    pathParams: [],
    bodyType: 'BalloonStartCmd',
    bodyRequired: false,
    successStatus: 204,
    responseType: null,
  },
  describeBalloonHinting: {
    method: 'GET',
    path: '/balloon/hinting/status',
    pathParams: [],
    bodyType: null,
    bodyRequired: false,
    successStatus: 200,
    responseType: 'BalloonHintingStatus',
  },
  stopBalloonHinting: {
    method: 'PATCH',
    path: '/balloon/hinting/stop',
    pathParams: [],
    bodyType: null,
    bodyRequired: false,
    successStatus: 204,
    responseType: null,
  },
  describeBalloonStats: {
    method: 'GET',
    path: '/balloon/statistics',
    pathParams: [],
    bodyType: null,
    bodyRequired: false,
    successStatus: 200,
    responseType: 'BalloonStats',
  },
  patchBalloonStatsInterval: {
    method: 'PATCH',
    path: '/balloon/statistics',
    pathParams: [],
    bodyType: 'BalloonStatsUpdate',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  putGuestBootSource: {
    method: 'PUT',
    path: '/boot-source',
    pathParams: [],
    bodyType: 'BootSource',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  putCpuConfiguration: {
    method: 'PUT',
    path: '/cpu-config',
    pathParams: [],
    bodyType: 'CpuConfig',
    bodyRequired: false,
    successStatus: 204,
    responseType: null,
  },
  putGuestDriveByID: {
    method: 'PUT',
    path: '/drives/{drive_id}',
    pathParams: ['drive_id'],
    bodyType: 'Drive',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  patchGuestDriveByID: {
    method: 'PATCH',
    path: '/drives/{drive_id}',
    pathParams: ['drive_id'],
    bodyType: 'PartialDrive',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  putEntropyDevice: {
    method: 'PUT',
    path: '/entropy',
    pathParams: [],
    bodyType: 'EntropyDevice',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  getMemoryHotplug: {
    method: 'GET',
    path: '/hotplug/memory',
    pathParams: [],
    bodyType: null,
    bodyRequired: false,
    successStatus: 200,
    responseType: 'MemoryHotplugStatus',
  },
  putMemoryHotplug: {
    method: 'PUT',
    path: '/hotplug/memory',
    pathParams: [],
    bodyType: 'MemoryHotplugConfig',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  patchMemoryHotplug: {
    method: 'PATCH',
    path: '/hotplug/memory',
    pathParams: [],
    bodyType: 'MemoryHotplugSizeUpdate',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  putLogger: {
    method: 'PUT',
    path: '/logger',
    pathParams: [],
    bodyType: 'Logger',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  getMachineConfiguration: {
    method: 'GET',
    path: '/machine-config',
    pathParams: [],
    bodyType: null,
    bodyRequired: false,
    successStatus: 200,
    responseType: 'MachineConfiguration',
  },
  putMachineConfiguration: {
    method: 'PUT',
    path: '/machine-config',
    pathParams: [],
    bodyType: 'MachineConfiguration',
    bodyRequired: false,
    successStatus: 204,
    responseType: null,
  },
  patchMachineConfiguration: {
    method: 'PATCH',
    path: '/machine-config',
    pathParams: [],
    bodyType: 'MachineConfiguration',
    bodyRequired: false,
    successStatus: 204,
    responseType: null,
  },
  putMetrics: {
    method: 'PUT',
    path: '/metrics',
    pathParams: [],
    bodyType: 'Metrics',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  getMmds: {
    method: 'GET',
    path: '/mmds',
    pathParams: [],
    bodyType: null,
    bodyRequired: false,
    successStatus: 200,
    responseType: 'inline',
  },
  putMmds: {
    method: 'PUT',
    path: '/mmds',
    pathParams: [],
    bodyType: 'MmdsContentsObject',
    bodyRequired: false,
    successStatus: 204,
    responseType: null,
  },
  patchMmds: {
    method: 'PATCH',
    path: '/mmds',
    pathParams: [],
    bodyType: 'MmdsContentsObject',
    bodyRequired: false,
    successStatus: 204,
    responseType: null,
  },
  putMmdsConfig: {
    method: 'PUT',
    path: '/mmds/config',
    pathParams: [],
    bodyType: 'MmdsConfig',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  putGuestNetworkInterfaceByID: {
    method: 'PUT',
    path: '/network-interfaces/{iface_id}',
    pathParams: ['iface_id'],
    bodyType: 'NetworkInterface',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  patchGuestNetworkInterfaceByID: {
    method: 'PATCH',
    path: '/network-interfaces/{iface_id}',
    pathParams: ['iface_id'],
    bodyType: 'PartialNetworkInterface',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  putGuestPmemByID: {
    method: 'PUT',
    path: '/pmem/{id}',
    pathParams: ['id'],
    bodyType: 'Pmem',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  patchGuestPmemByID: {
    method: 'PATCH',
    path: '/pmem/{id}',
    pathParams: ['id'],
    bodyType: 'PartialPmem',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  putSerialDevice: {
    method: 'PUT',
    path: '/serial',
    pathParams: [],
    bodyType: 'SerialDevice',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  createSnapshot: {
    method: 'PUT',
    path: '/snapshot/create',
    pathParams: [],
    bodyType: 'SnapshotCreateParams',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  loadSnapshot: {
    method: 'PUT',
    path: '/snapshot/load',
    pathParams: [],
    bodyType: 'SnapshotLoadParams',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  getFirecrackerVersion: {
    method: 'GET',
    path: '/version',
    pathParams: [],
    bodyType: null,
    bodyRequired: false,
    successStatus: 200,
    responseType: 'FirecrackerVersion',
  },
  patchVm: {
    method: 'PATCH',
    path: '/vm',
    pathParams: [],
    bodyType: 'Vm',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
  getExportVmConfig: {
    method: 'GET',
    path: '/vm/config',
    pathParams: [],
    bodyType: null,
    bodyRequired: false,
    successStatus: 200,
    responseType: 'FullVmConfiguration',
  },
  putGuestVsock: {
    method: 'PUT',
    path: '/vsock',
    pathParams: [],
    bodyType: 'Vsock',
    bodyRequired: true,
    successStatus: 204,
    responseType: null,
  },
} as const satisfies Record<FirecrackerOperationId, FirecrackerOperationInfo>;
