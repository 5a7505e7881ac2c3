/**
 * The fake's VMM: Firecracker's state and the rules its API enforces, with
 * fault messages taken from Firecracker's sources where we know them. It
 * sees requests already matched to a spec operation and schema-checked;
 * it answers { status, body } or throws Fault. Side effects that touch the
 * host (vsock listener, guest agent, log and metrics files) go through
 * `hooks`, so this file stays about rules.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostPath } from './paths.mjs';

/** A request Firecracker refuses: `rule` names the broken rule in the report. */
export class Fault extends Error {
  constructor(message, rule, status = 400) {
    super(message);
    this.rule = rule;
    this.status = status;
  }
}

const NOT_PRE_BOOT = 'The requested operation is not supported before starting the microVM.';
const NOT_POST_BOOT = 'The requested operation is not supported after starting the microVM.';

/** Refused once the VM started or was restored (Firecracker's RuntimeApiController list). */
export const PRE_BOOT_ONLY = new Set([
  'putGuestBootSource',
  'putMachineConfiguration',
  'patchMachineConfiguration',
  'putGuestDriveByID',
  'putGuestNetworkInterfaceByID',
  'putGuestPmemByID',
  'putGuestVsock',
  'putBalloon',
  'putEntropyDevice',
  'putMmdsConfig',
  'putCpuConfiguration',
  'putLogger',
  'putMetrics',
  'putSerialDevice',
  'putMemoryHotplug',
  'loadSnapshot',
]);
/** Refused before the VM started (Firecracker's PrebootApiController list). */
export const POST_BOOT_ONLY = new Set([
  'createSnapshot',
  'patchVm',
  'describeBalloonStats',
  'patchBalloon',
  'patchBalloonStatsInterval',
  'patchGuestDriveByID',
  'patchGuestNetworkInterfaceByID',
  'patchGuestPmemByID',
  'getMemoryHotplug',
  'patchMemoryHotplug',
  'startBalloonHinting',
  'describeBalloonHinting',
  'stopBalloonHinting',
]);
/** Configuring any of these makes a later /snapshot/load fail (Firecracker's `boot_path`). */
const BOOT_PATH = new Set([
  'putGuestBootSource',
  'putMachineConfiguration',
  'patchMachineConfiguration',
  'putGuestDriveByID',
  'putGuestNetworkInterfaceByID',
  'putGuestPmemByID',
  'putGuestVsock',
  'putBalloon',
  'putEntropyDevice',
  'putMmdsConfig',
  'putMemoryHotplug',
]);

const SNAPSHOT_MAGIC = 'fake-firecracker-snapshot';

/** RFC 7396 JSON merge patch, as Firecracker applies PATCH /mmds. */
function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export class FakeVmm {
  /**
   * @param {object} o
   * @param {string} o.id instance id (--id)
   * @param {string} o.vmmVersion e.g. "1.12.0"
   * @param {number} o.mmdsSizeLimit bytes
   * @param {boolean} o.checkFiles refuse paths that do not exist, as Firecracker opens them
   * @param {object} o.hooks { startDevices(config), guestStarted(), pause(), resume(), flushMetrics(), configureLogger(cfg), configureMetrics(cfg), ctrlAltDel() }
   */
  constructor({ id, vmmVersion, mmdsSizeLimit, checkFiles, hooks }) {
    Object.assign(this, { id, vmmVersion, mmdsSizeLimit, checkFiles, hooks });
    this.state = 'Not started';
    this.unusable = false;
    this.bootPath = false;
    this.mmds = null;
    /** What the "guest" runs: the vsock port its agent listens on, kept in snapshots. */
    this.guest = { agentPort: null };
    this.config = {
      machine: { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: 'None' },
      bootSource: null,
      drives: new Map(),
      ifaces: new Map(),
      pmem: new Map(),
      vsock: null,
      entropy: null,
      mmdsConfig: null,
      balloon: null,
      cpuConfig: null,
      serial: null,
      memoryHotplug: null,
      logger: null,
      metrics: null,
    };
  }

  get started() {
    return this.state !== 'Not started';
  }

  requireFile(path, what) {
    if (this.checkFiles && !existsSync(hostPath(path))) throw new Fault(`${what}: No such file or directory (os error 2): ${path}`, 'file-missing');
  }

  /** Answers one request already matched to `operationId` and schema-checked. */
  async handle(operationId, pathParams, body) {
    if (this.unusable) {
      throw new Fault('Firecracker is unusable after a failed snapshot load; start a new process.', 'process-unusable');
    }
    const action = operationId === 'createSyncAction' ? body.action_type : null;
    if (this.started && (PRE_BOOT_ONLY.has(operationId) || action === 'InstanceStart')) throw new Fault(NOT_POST_BOOT, 'pre-boot-only');
    if (!this.started && (POST_BOOT_ONLY.has(operationId) || action === 'FlushMetrics' || action === 'SendCtrlAltDel')) {
      throw new Fault(NOT_PRE_BOOT, 'post-boot-only');
    }
    if (BOOT_PATH.has(operationId)) this.bootPath = true;
    const handler = this[`op_${operationId}`];
    if (!handler) throw new Fault(`The fake does not implement ${operationId}.`, 'not-implemented');
    return (await handler.call(this, body, pathParams)) ?? { status: 204 };
  }

  checkId(fromPath, fromBody) {
    if (fromPath !== fromBody) throw new Fault('The id from the path does not match the id from the body!', 'path-body-id-mismatch');
  }

  instanceInfo() {
    return { id: this.id, state: this.state, vmm_version: this.vmmVersion, app_name: 'Firecracker' };
  }

  fullConfig() {
    const c = this.config;
    const out = { 'machine-config': { ...c.machine }, drives: [...c.drives.values()], 'network-interfaces': [...c.ifaces.values()] };
    if (c.bootSource) out['boot-source'] = c.bootSource;
    if (c.balloon) out.balloon = c.balloon;
    if (c.cpuConfig) out['cpu-config'] = c.cpuConfig;
    if (c.logger) out.logger = c.logger;
    if (c.metrics) out.metrics = c.metrics;
    if (c.memoryHotplug) out['memory-hotplug'] = c.memoryHotplug;
    if (c.mmdsConfig) out['mmds-config'] = c.mmdsConfig;
    if (c.pmem.size) out.pmem = [...c.pmem.values()];
    if (c.vsock) out.vsock = c.vsock;
    if (c.entropy) out.entropy = c.entropy;
    return out;
  }

  // ---- GETs ----
  op_describeInstance() {
    return { status: 200, body: this.instanceInfo() };
  }
  op_getFirecrackerVersion() {
    return { status: 200, body: { firecracker_version: this.vmmVersion } };
  }
  op_getExportVmConfig() {
    return { status: 200, body: this.fullConfig() };
  }
  op_getMachineConfiguration() {
    return { status: 200, body: { ...this.config.machine } };
  }
  op_getMmds() {
    return { status: 200, body: this.mmds ?? {} };
  }

  // ---- Pre-boot configuration ----
  op_putMachineConfiguration(body) {
    this.config.machine = this.checkMachine({ smt: false, track_dirty_pages: false, huge_pages: 'None', ...body });
  }
  op_patchMachineConfiguration(body) {
    if (Object.keys(body).length === 0) throw new Fault('Empty PATCH request.', 'empty-patch');
    this.config.machine = this.checkMachine({ ...this.config.machine, ...body });
  }
  checkMachine(m) {
    if (m.smt && m.vcpu_count > 1 && m.vcpu_count % 2 === 1) {
      throw new Fault(
        'Machine config error: The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.',
        'machine-config',
      );
    }
    if (m.mem_size_mib === 0) throw new Fault('Machine config error: The memory size (MiB) is invalid.', 'machine-config');
    if (m.huge_pages === '2M' && m.mem_size_mib % 2 !== 0) {
      throw new Fault('Machine config error: The memory size (MiB) must be a multiple of the huge page size.', 'machine-config');
    }
    return m;
  }
  op_putGuestBootSource(body) {
    this.requireFile(body.kernel_image_path, 'Boot source error: The kernel file cannot be opened');
    if (body.initrd_path) this.requireFile(body.initrd_path, 'Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions.');
    this.config.bootSource = body;
  }
  op_putGuestDriveByID(body, { drive_id }) {
    this.checkId(drive_id, body.drive_id);
    if (body.is_root_device && [...this.config.drives.values()].some((d) => d.is_root_device && d.drive_id !== body.drive_id)) {
      throw new Fault('Drive config error: A root block device already exists!', 'drive-config');
    }
    if (body.path_on_host !== undefined)
      this.requireFile(
        body.path_on_host,
        'Drive config error: Unable to create the virtio block device: Virtio backend error: Error manipulating the backing file',
      );
    else if (body.socket === undefined) throw new Fault('Drive config error: Either path_on_host or socket must be set.', 'drive-config');
    this.config.drives.set(drive_id, body);
  }
  op_putGuestNetworkInterfaceByID(body, { iface_id }) {
    this.checkId(iface_id, body.iface_id);
    for (const other of this.config.ifaces.values()) {
      if (other.iface_id !== iface_id && other.host_dev_name === body.host_dev_name) {
        throw new Fault(`Network config error: The host device name ${body.host_dev_name} is already in use.`, 'network-config');
      }
    }
    this.config.ifaces.set(iface_id, body);
  }
  op_putGuestPmemByID(body, { id }) {
    this.checkId(id, body.id);
    this.requireFile(body.path_on_host, 'Pmem device error: Unable to open the backing file');
    this.config.pmem.set(id, body);
  }
  op_putGuestVsock(body) {
    this.config.vsock = body;
  }
  op_putEntropyDevice(body) {
    this.config.entropy = body;
  }
  op_putCpuConfiguration(body) {
    this.config.cpuConfig = body;
  }
  op_putSerialDevice(body) {
    this.config.serial = body;
  }
  op_putMemoryHotplug(body) {
    this.config.memoryHotplug = { slot_size_mib: 128, block_size_mib: 2, ...body, requested_size_mib: 0 };
  }
  op_putBalloon(body) {
    if (body.amount_mib > this.config.machine.mem_size_mib) {
      throw new Fault('Balloon config error: Amount of pages requested is too large.', 'balloon-config');
    }
    this.config.balloon = { stats_polling_interval_s: 0, ...body };
  }
  op_putMmdsConfig(body) {
    const missing = body.network_interfaces.filter((id) => !this.config.ifaces.has(id));
    if (missing.length) {
      throw new Fault(
        'MMDS config error: The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.',
        'mmds-config',
      );
    }
    this.config.mmdsConfig = { version: 'V1', ipv4_address: '169.254.169.254', ...body };
  }
  op_putMmds(body) {
    if (JSON.stringify(body).length > this.mmdsSizeLimit) throw new Fault("MMDS limit exceeded error: The MMDS patch request doesn't fit.", 'mmds-size', 413);
    this.mmds = body;
  }
  op_patchMmds(body) {
    if (this.mmds === null) throw new Fault('MMDS error: The MMDS data store is not initialized.', 'mmds-not-initialized');
    const next = mergePatch(this.mmds, body);
    if (JSON.stringify(next).length > this.mmdsSizeLimit) throw new Fault("MMDS limit exceeded error: The MMDS patch request doesn't fit.", 'mmds-size', 413);
    this.mmds = next;
  }
  async op_putLogger(body) {
    await this.hooks.configureLogger(body);
    this.config.logger = body;
  }
  async op_putMetrics(body) {
    if (this.config.metrics) throw new Fault('Metrics error: Reinitialization of metrics not allowed.', 'metrics-reinit');
    await this.hooks.configureMetrics(body);
    this.config.metrics = body;
  }

  // ---- Actions ----
  async op_createSyncAction(body) {
    switch (body.action_type) {
      case 'InstanceStart':
        if (!this.config.bootSource) throw new Fault('Start microvm error: Cannot start microvm without kernel configuration.', 'missing-boot-source');
        await this.startDevices();
        this.state = 'Running';
        this.hooks.guestStarted?.();
        return;
      case 'FlushMetrics':
        if (!this.config.metrics) throw new Fault('Internal VMM error: Metrics error: Metrics system was not initialized.', 'metrics-not-configured');
        this.hooks.flushMetrics();
        return;
      case 'SendCtrlAltDel':
        this.hooks.ctrlAltDel();
        return;
    }
  }
  async startDevices() {
    const vsock = this.config.vsock;
    if (vsock && existsSync(hostPath(vsock.uds_path))) {
      throw new Fault(
        `Start microvm error: Cannot create backend for vsock device: UnixBind(Os { code: 98, kind: AddrInUse, message: "Address in use" }): ${vsock.uds_path}`,
        'vsock-uds-exists',
      );
    }
    await this.hooks.startDevices(this.config, this.guest);
  }

  // ---- Post-boot ----
  op_patchVm(body) {
    if (body.state === 'Paused' && this.state !== 'Paused') {
      this.state = 'Paused';
      this.hooks.pause();
    } else if (body.state === 'Resumed' && this.state !== 'Running') {
      this.state = 'Running';
      this.hooks.resume();
    }
  }
  op_patchGuestDriveByID(body, { drive_id }) {
    this.checkId(drive_id, body.drive_id);
    const drive = this.config.drives.get(drive_id);
    if (!drive) throw new Fault(`Drive config error: Unable to patch the block device: Invalid block device ID: ${drive_id}`, 'unknown-device');
    if (body.path_on_host !== undefined) this.requireFile(body.path_on_host, 'Drive config error: Unable to patch the block device');
    this.config.drives.set(drive_id, { ...drive, ...body });
  }
  op_patchGuestNetworkInterfaceByID(body, { iface_id }) {
    this.checkId(iface_id, body.iface_id);
    const iface = this.config.ifaces.get(iface_id);
    if (!iface) throw new Fault(`Network config error: Could not find net device: ${iface_id}`, 'unknown-device');
    this.config.ifaces.set(iface_id, { ...iface, ...body });
  }
  op_patchGuestPmemByID(body, { id }) {
    this.checkId(id, body.id);
    const pmem = this.config.pmem.get(id);
    if (!pmem) throw new Fault(`Pmem device error: Invalid pmem device ID: ${id}`, 'unknown-device');
    this.config.pmem.set(id, { ...pmem, ...body });
  }
  balloonOrFault() {
    if (!this.config.balloon) throw new Fault('Balloon config error: No balloon device found.', 'balloon-missing');
    return this.config.balloon;
  }
  op_describeBalloonConfig() {
    return { status: 200, body: this.balloonOrFault() };
  }
  op_patchBalloon(body) {
    const b = this.balloonOrFault();
    if (body.amount_mib > this.config.machine.mem_size_mib) throw new Fault('Balloon update error: Amount of pages requested is too large.', 'balloon-config');
    this.config.balloon = { ...b, amount_mib: body.amount_mib };
  }
  statsOrFault() {
    const b = this.balloonOrFault();
    if (!b.stats_polling_interval_s) throw new Fault('Balloon update error: Statistics for the balloon device are not enabled.', 'balloon-stats-disabled');
    return b;
  }
  op_describeBalloonStats() {
    const b = this.statsOrFault();
    const pages = b.amount_mib * 256;
    return { status: 200, body: { target_pages: pages, actual_pages: pages, target_mib: b.amount_mib, actual_mib: b.amount_mib } };
  }
  op_patchBalloonStatsInterval(body) {
    const b = this.statsOrFault();
    if (body.stats_polling_interval_s === 0) throw new Fault('Balloon update error: Cannot disable statistics after boot.', 'balloon-stats');
    this.config.balloon = { ...b, stats_polling_interval_s: body.stats_polling_interval_s };
  }
  hintingOrFault() {
    if (!this.balloonOrFault().free_page_hinting) throw new Fault('Balloon update error: Free page hinting is not enabled.', 'balloon-hinting-disabled');
  }
  op_startBalloonHinting() {
    this.hintingOrFault();
  }
  op_stopBalloonHinting() {
    this.hintingOrFault();
  }
  op_describeBalloonHinting() {
    this.hintingOrFault();
    return { status: 200, body: { host_cmd: 0 } };
  }
  hotplugOrFault() {
    if (!this.config.memoryHotplug) throw new Fault('Internal VMM error: The memory hotplug device was not configured.', 'hotplug-missing');
    return this.config.memoryHotplug;
  }
  op_getMemoryHotplug() {
    const h = this.hotplugOrFault();
    return { status: 200, body: { ...h, plugged_size_mib: h.requested_size_mib } };
  }
  op_patchMemoryHotplug(body) {
    const h = this.hotplugOrFault();
    const size = body.requested_size_mib ?? 0;
    if (size > (h.total_size_mib ?? 0) || size % h.block_size_mib !== 0) {
      throw new Fault('Memory hotplug update error: Invalid requested size.', 'hotplug-size');
    }
    h.requested_size_mib = size;
  }

  // ---- Snapshots ----
  op_createSnapshot(body) {
    if (this.state !== 'Paused') {
      throw new Fault(
        `Create snapshot error: Cannot save the microVM state: the microVM must be paused (state: ${this.state}).`,
        'snapshot-create-requires-paused',
      );
    }
    const type = body.snapshot_type ?? 'Full';
    if (type === 'Diff' && !this.config.machine.track_dirty_pages) {
      throw new Fault('Create snapshot error: Diff snapshots are not allowed on uVMs with dirty page tracking disabled.', 'diff-without-dirty-tracking');
    }
    const { logger: _l, metrics: _m, ...kept } = this.fullConfig(); // logger and metrics are not part of a snapshot
    const state = { magic: SNAPSHOT_MAGIC, vmm_version: this.vmmVersion, snapshot_type: type, config: kept, guest: { ...this.guest } };
    try {
      writeFileSync(hostPath(body.snapshot_path), JSON.stringify(state, null, 2));
      writeFileSync(
        hostPath(body.mem_file_path),
        JSON.stringify({ magic: `${SNAPSHOT_MAGIC}-memory`, mem_size_mib: this.config.machine.mem_size_mib, snapshot_type: type }),
      );
    } catch (err) {
      throw new Fault(`Create snapshot error: Cannot write the snapshot: ${err.message}`, 'snapshot-write');
    }
  }

  async op_loadSnapshot(body) {
    if (this.bootPath) {
      throw new Fault('Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources.', 'snapshot-load-fresh-process');
    }
    if ((body.mem_backend === undefined) === (body.mem_file_path === undefined)) {
      const msg = body.mem_backend
        ? 'too many fields: either `mem_backend` or `mem_file_path` exclusively is required'
        : 'missing field: either `mem_backend` or `mem_file_path` is required';
      throw new Fault(`An error occurred when deserializing the json body of a request: ${msg}.`, 'snapshot-load-mem');
    }
    // From here on a failure leaves the process unusable, as in Firecracker.
    try {
      const state = readSnapshot(hostPath(body.snapshot_path));
      const mem = body.mem_backend ?? { backend_type: 'File', backend_path: body.mem_file_path };
      if (!existsSync(hostPath(mem.backend_path)))
        throw new Error(
          `${mem.backend_type === 'Uffd' ? 'Failed to connect to the UFFD handler socket' : 'Failed to open the memory file'}: No such file or directory (os error 2): ${mem.backend_path}`,
        );
      const c = state.config;
      // Firecracker reopens every block device at the path the snapshot recorded.
      for (const d of c.drives ?? []) {
        if (d.path_on_host !== undefined)
          this.requireFile(
            d.path_on_host,
            'Load snapshot error: Failed to restore from snapshot: Failed to restore devices: Block(BackingFile(No such file or directory))',
          );
      }
      this.guest = { agentPort: state.guest?.agentPort ?? null };
      const ifaces = new Map((c['network-interfaces'] ?? []).map((n) => [n.iface_id, n]));
      for (const o of body.network_overrides ?? []) {
        const iface = ifaces.get(o.iface_id);
        if (!iface) throw new Error(`Invalid network override: no network interface ${o.iface_id} in the snapshot`);
        ifaces.set(o.iface_id, { ...iface, host_dev_name: o.host_dev_name });
      }
      const vsock = c.vsock && body.vsock_override ? { ...c.vsock, uds_path: body.vsock_override.uds_path } : (c.vsock ?? null);
      Object.assign(this.config, {
        machine: { ...c['machine-config'], track_dirty_pages: body.track_dirty_pages ?? body.enable_diff_snapshots ?? false },
        bootSource: null, // a restored VM has no boot source
        drives: new Map((c.drives ?? []).map((d) => [d.drive_id, d])),
        ifaces,
        pmem: new Map((c.pmem ?? []).map((p) => [p.id, p])),
        vsock,
        entropy: c.entropy ?? null,
        mmdsConfig: c['mmds-config'] ?? null,
        balloon: c.balloon ?? null,
        memoryHotplug: c['memory-hotplug'] ?? null,
      });
      await this.startDevices();
    } catch (err) {
      this.unusable = true;
      const message = err instanceof Fault ? err.message : `Load snapshot error: Failed to restore from snapshot: ${err.message}`;
      throw new Fault(message, 'snapshot-load-failed');
    }
    this.state = 'Paused';
    if (body.resume_vm) {
      this.state = 'Running';
      this.hooks.resume();
    }
  }
}

function readSnapshot(path) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(
      `Failed to get snapshot state from file: Failed to open snapshot file: ${err.code === 'ENOENT' ? 'No such file or directory (os error 2)' : err.message}`,
    );
  }
  let state;
  try {
    state = JSON.parse(text);
  } catch {
    state = null;
  }
  if (state?.magic !== SNAPSHOT_MAGIC) throw new Error('Failed to get snapshot state from file: Invalid snapshot file (not written by this fake Firecracker)');
  return state;
}
