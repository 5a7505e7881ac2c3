/**
 * The fake's logger and metrics sinks. Like Firecracker they open the
 * target (file or named pipe) non-blocking and read-write, so a FIFO without
 * a reader neither blocks nor fails; unlike Firecracker they create a
 * missing regular file. Metrics lines use Firecracker's shape: counters are
 * deltas since the previous flush.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { hostPath } from './paths.mjs';

const LEVELS = ['Off', 'Error', 'Warning', 'Info', 'Debug', 'Trace'];

function openSink(path) {
  return openSync(hostPath(path), constants.O_RDWR | constants.O_NONBLOCK | constants.O_APPEND | constants.O_CREAT, 0o644);
}

/** Firecracker's per-endpoint API counters: operationId -> [group, name]. */
const API_COUNTERS = {
  describeInstance: ['get_api_requests', 'instance_info'],
  getMachineConfiguration: ['get_api_requests', 'machine_cfg'],
  getMmds: ['get_api_requests', 'mmds'],
  getFirecrackerVersion: ['get_api_requests', 'vmm_version'],
  createSyncAction: ['put_api_requests', 'actions'],
  putGuestBootSource: ['put_api_requests', 'boot_source'],
  putGuestDriveByID: ['put_api_requests', 'drive'],
  putLogger: ['put_api_requests', 'logger'],
  putMachineConfiguration: ['put_api_requests', 'machine_cfg'],
  putCpuConfiguration: ['put_api_requests', 'cpu_cfg'],
  putMetrics: ['put_api_requests', 'metrics'],
  putGuestNetworkInterfaceByID: ['put_api_requests', 'network'],
  putMmds: ['put_api_requests', 'mmds'],
  putMmdsConfig: ['put_api_requests', 'mmds'],
  putGuestVsock: ['put_api_requests', 'vsock'],
  patchGuestDriveByID: ['patch_api_requests', 'drive'],
  patchGuestNetworkInterfaceByID: ['patch_api_requests', 'network'],
  patchMachineConfiguration: ['patch_api_requests', 'machine_cfg'],
  patchMmds: ['patch_api_requests', 'mmds'],
};

function zeroCounters() {
  const c = {
    api_server: { process_startup_time_us: 0, process_startup_time_cpu_us: 0, sync_response_fails: 0, sync_vmm_send_timeout_count: 0 },
    get_api_requests: {},
    put_api_requests: {},
    patch_api_requests: {},
    latencies_us: { full_create_snapshot: 0, diff_create_snapshot: 0, load_snapshot: 0, pause_vm: 0, resume_vm: 0 },
    logger: { missed_metrics_count: 0, metrics_fails: 0, missed_log_count: 0, log_fails: 0 },
    seccomp: { num_faults: 0 },
    vmm: { device_events: 0, panic_count: 0 },
    vsock: { conns_added: 0, conns_killed: 0, conns_removed: 0, rx_bytes_count: 0, tx_bytes_count: 0 },
  };
  for (const [group, name] of Object.values(API_COUNTERS)) {
    c[group][`${name}_count`] = 0;
    if (group !== 'get_api_requests') c[group][`${name}_fails`] = 0;
  }
  return c;
}

export class LogMetrics {
  /** @param {{ id: string, startupUs: number, startupCpuUs: number }} o */
  constructor({ id, startupUs, startupCpuUs }) {
    this.id = id;
    this.logFd = null;
    this.logCfg = null;
    this.metricsFd = null;
    this.metricsCfg = null;
    this.counters = zeroCounters();
    this.counters.api_server.process_startup_time_us = startupUs;
    this.counters.api_server.process_startup_time_cpu_us = startupCpuUs;
    this.flushes = 0;
  }

  /** PUT /logger: opens `log_path` (throws with Firecracker's wording when it cannot). */
  configureLogger(cfg) {
    if (cfg.log_path) {
      const fd = tryOpen(cfg.log_path, 'Logger error: Failed to open target file');
      if (this.logFd !== null) closeSync(this.logFd);
      this.logFd = fd;
    }
    this.logCfg = { level: 'Info', show_level: false, show_log_origin: false, ...this.logCfg, ...cfg };
  }

  /** Appends one line in Firecracker's format, when the logger is configured and `level` is enabled. */
  log(level, message) {
    if (this.logFd === null) return;
    const wanted = LEVELS.indexOf(this.logCfg.level[0].toUpperCase() + this.logCfg.level.slice(1).toLowerCase());
    if (LEVELS.indexOf(level) > wanted) return;
    const tag = [this.id, 'fc_api', this.logCfg.show_level ? level.toUpperCase() : null].filter(Boolean).join(':');
    const origin = this.logCfg.show_log_origin ? 'src/api_server/src/parsed_request.rs:70 ' : '';
    try {
      writeSync(this.logFd, `${new Date().toISOString().replace('Z', '000000')} [${tag}] ${origin}${message}\n`);
    } catch {
      this.counters.logger.missed_log_count++;
    }
  }

  /** PUT /metrics: opens `metrics_path`. */
  configureMetrics(cfg) {
    this.metricsFd = tryOpen(cfg.metrics_path, 'Metrics error: Failed to open target file');
    this.metricsCfg = cfg;
  }

  /** Counts one API request the way Firecracker's metrics do. */
  countRequest(operationId, failed) {
    const slot = API_COUNTERS[operationId];
    if (!slot) return;
    const [group, name] = slot;
    this.counters[group][`${name}_count`]++;
    if (failed && group !== 'get_api_requests') this.counters[group][`${name}_fails`]++;
  }

  latency(name, us) {
    this.counters.latencies_us[name] = Math.round(us);
  }

  /** FlushMetrics: writes one JSON line, then resets the counters (they are deltas). */
  flush() {
    if (this.metricsFd === null) return false;
    const line = { utc_timestamp_ms: Date.now(), ...this.counters };
    if (this.metricsCfg.emit_id) line.id = this.id;
    if (this.metricsCfg.properties) line.properties = this.metricsCfg.properties;
    try {
      writeSync(this.metricsFd, `${JSON.stringify(line)}\n`);
    } catch {
      this.counters.logger.metrics_fails++;
      return false;
    }
    const { process_startup_time_us, process_startup_time_cpu_us } = this.counters.api_server;
    this.counters = zeroCounters();
    Object.assign(this.counters.api_server, { process_startup_time_us, process_startup_time_cpu_us });
    this.flushes++;
    return true;
  }

  close() {
    for (const fd of [this.logFd, this.metricsFd]) if (fd !== null) closeSync(fd);
    this.logFd = this.metricsFd = null;
  }
}

function tryOpen(path, what) {
  try {
    return openSink(path);
  } catch (err) {
    const e = new Error(`${what}: ${err.message}`);
    e.code = err.code;
    throw e;
  }
}
