import { InvalidStateError, ProcessNotFoundError, VmBusyError } from '../errors/index.js';
import { DEFAULT_EVENT_LOG_BOUNDS, type EventLogBounds } from './event-log.js';
import { ProcessRecord } from './process-record.js';
import type { ProcessAgent, ProcessAgentEvent, ProcessSignal, ProcessSpawnRequest, ProcessVm } from './types.js';

export interface ProcessRegistryOptions {
  /** Process records kept per VM (running ones and the most recent exited ones). Default 64. */
  maxProcessesPerVm?: number;
  /** Output streams open at once per VM. Default 16. */
  maxStreamsPerVm?: number;
  /** Per-process event log bounds. Default 1 MiB of output, 4096 events. */
  logBounds?: EventLogBounds;
}

export const DEFAULT_MAX_PROCESSES_PER_VM = 64;
export const DEFAULT_MAX_STREAMS_PER_VM = 16;
/** Events of a pid whose spawn is still being answered, held until the answer names the pid (bounded). */
const EARLY_EVENTS_MAX = 256;
const EARLY_BYTES_MAX = 1024 * 1024;

interface AgentSubscription {
  unsubscribe: () => void;
  pendingSpawns: number;
  early: ProcessAgentEvent[];
  earlyBytes: number;
}

interface VmEntry {
  vm: ProcessVm;
  generation: number;
  records: Map<number, ProcessRecord>;
  agents: Map<ProcessAgent, AgentSubscription>;
  pendingSpawns: number;
  streams: number;
  unwatch?: () => void;
}

/**
 * Host-side records of processes started in VMs through the API: per VM a
 * map pid -> ProcessRecord (bounded event log), fed by the agent's process
 * events. A VM's records all go when the VM is gone or was handed to a new
 * allocation (`generation` changed); events of pids the registry did not
 * start are ignored. This module knows nothing about HTTP.
 */
export class ProcessRegistry {
  private readonly vms = new Map<string, VmEntry>();
  private readonly maxProcesses: number;
  private readonly maxStreams: number;
  private readonly logBounds: EventLogBounds;

  constructor(options: ProcessRegistryOptions = {}) {
    this.maxProcesses = options.maxProcessesPerVm ?? DEFAULT_MAX_PROCESSES_PER_VM;
    this.maxStreams = options.maxStreamsPerVm ?? DEFAULT_MAX_STREAMS_PER_VM;
    this.logBounds = options.logBounds ?? DEFAULT_EVENT_LOG_BOUNDS;
  }

  /**
   * Starts `request` in `vm` and records it. `generation` identifies the
   * VM's current allocation (a reuse pool hands one VM out many times): a
   * new value drops the records of the previous one. Throws VmBusyError
   * when the VM already has the maximum of running processes,
   * InvalidStateError when the guest agent cannot stream processes, and
   * what AgentClient.spawn throws (GUEST_COMMAND_NOT_FOUND, AGENT_*).
   */
  async spawn(vm: ProcessVm, generation: number, request: ProcessSpawnRequest): Promise<ProcessRecord> {
    const agent = vm.agent;
    if (!agent.supportsProcesses) {
      throw new InvalidStateError(
        `the guest agent of VM ${vm.id} is too old to stream processes; rebuild the image with \`tfc image build\` (and remove old snapshots with \`tfc snapshot rm PROFILE\`)`,
        { details: { vm_id: vm.id, feature: 'processes' } },
      );
    }
    const entry = this.entry(vm, generation);
    this.makeRoom(entry);
    const sub = this.subscribe(entry, agent);
    sub.pendingSpawns += 1;
    entry.pendingSpawns += 1;
    let pid: number;
    try {
      ({ pid } = await agent.spawn(request));
    } finally {
      sub.pendingSpawns -= 1;
      entry.pendingSpawns -= 1;
    }
    const record = new ProcessRecord(pid, [...request.argv], request.pty !== undefined, this.logBounds);
    // A pid the guest reused replaces the old (exited) record.
    entry.records.get(pid)?.drop(`process ${pid} was replaced by a new process with the same pid`);
    entry.records.set(pid, record);
    if (this.vms.get(vm.id) !== entry) record.drop(`VM ${vm.id} is gone`);
    // Output of a fast process may have arrived before the spawn answer named its pid.
    const early = sub.early.filter((e) => e.pid === pid);
    if (sub.pendingSpawns === 0) {
      sub.early = [];
      sub.earlyBytes = 0;
    } else {
      sub.early = sub.early.filter((e) => e.pid !== pid);
      sub.earlyBytes = sub.early.reduce((n, e) => n + (e.type === 'exit' ? 0 : e.data.length), 0);
    }
    for (const e of early) apply(record, e);
    return record;
  }

  /** The records of `vm`'s current allocation, oldest first (none for a VM the registry does not know). */
  list(vm: ProcessVm, generation: number): ProcessRecord[] {
    const entry = this.current(vm, generation);
    return entry ? [...entry.records.values()] : [];
  }

  /** One record; throws ProcessNotFoundError. */
  get(vm: ProcessVm, generation: number, pid: number): ProcessRecord {
    const record = this.current(vm, generation)?.records.get(pid);
    if (!record) {
      throw new ProcessNotFoundError(`VM ${vm.id} has no process ${pid} started through the processes API; list them with GET /v1/vms/${vm.id}/processes`, {
        details: { vm_id: vm.id, pid },
      });
    }
    return record;
  }

  /** Writes to a running process's stdin (eof: close it after). Throws ProcessNotFoundError, InvalidStateError (exited), agent errors. */
  async writeStdin(vm: ProcessVm, generation: number, pid: number, data: Buffer, eof: boolean): Promise<{ bytesAccepted: number }> {
    this.running(vm, generation, pid, 'write to the stdin of');
    if (data.length === 0 && eof) {
      await vm.agent.closeStdin(pid);
      return { bytesAccepted: 0 };
    }
    return vm.agent.writeStdin(pid, data, { eof });
  }

  /** Sends `signal` to a running process. Throws like writeStdin. */
  async signal(vm: ProcessVm, generation: number, pid: number, signal: ProcessSignal): Promise<void> {
    this.running(vm, generation, pid, 'signal');
    await vm.agent.signalProcess(pid, signal);
  }

  /** Resizes a running process's terminal. Throws like writeStdin, and InvalidStateError when it has no terminal. */
  async resize(vm: ProcessVm, generation: number, pid: number, cols: number, rows: number): Promise<void> {
    const record = this.running(vm, generation, pid, 'resize the terminal of');
    if (!record.pty) throw new InvalidStateError(`process ${pid} has no terminal (it was started without pty); only pty processes can be resized`);
    await vm.agent.resizePty(pid, cols, rows);
  }

  /**
   * Claims one of the VM's output-stream slots; call the returned function
   * when the stream ends. Throws VmBusyError when all are taken.
   */
  openStream(vm: ProcessVm, generation: number): () => void {
    const entry = this.entry(vm, generation);
    if (entry.streams >= this.maxStreams) {
      throw new VmBusyError(`VM ${vm.id} already has ${entry.streams} open output streams (at most ${this.maxStreams}); close one first`, {
        details: { vm_id: vm.id, streams: entry.streams, max: this.maxStreams },
      });
    }
    entry.streams += 1;
    let released = false;
    return () => {
      if (!released) entry.streams -= 1;
      released = true;
    };
  }

  /** Drops every record of VM `vmId` (its output streams end). Idempotent. */
  dropVm(vmId: string, reason: string): void {
    const entry = this.vms.get(vmId);
    if (!entry) return;
    this.vms.delete(vmId);
    entry.unwatch?.();
    for (const sub of entry.agents.values()) sub.unsubscribe();
    for (const record of entry.records.values()) record.drop(reason);
  }

  /** Drops the records of every VM for which `alive(vmId, vm)` is false (VMs stopped or released since). */
  sweep(alive: (vmId: string, vm: ProcessVm) => boolean): void {
    for (const [id, entry] of [...this.vms]) if (!alive(id, entry.vm)) this.dropVm(id, `VM ${id} was released or stopped`);
  }

  /** VM ids with records (for tests and metrics). */
  vmIds(): string[] {
    return [...this.vms.keys()];
  }

  /** Drops everything. */
  close(reason = 'server shutting down'): void {
    for (const id of [...this.vms.keys()]) this.dropVm(id, reason);
  }

  private current(vm: ProcessVm, generation: number): VmEntry | undefined {
    const entry = this.vms.get(vm.id);
    if (entry && (entry.vm !== vm || entry.generation !== generation)) {
      this.dropVm(vm.id, `VM ${vm.id} was released and allocated again`);
      return undefined;
    }
    if (entry) this.followCurrentAgent(entry);
    return entry;
  }

  /**
   * A VM whose agent connection was replaced (reconnectAgent) reports its
   * processes on the new one: listen there too, and forget closed ones.
   */
  private followCurrentAgent(entry: VmEntry): void {
    for (const [agent, sub] of entry.agents) {
      if (agent.closed) {
        sub.unsubscribe();
        entry.agents.delete(agent);
      }
    }
    let agent: ProcessAgent;
    try {
      agent = entry.vm.agent;
    } catch {
      return; // not running (paused, stopping): nothing to listen to now
    }
    if (!agent.closed) this.subscribe(entry, agent);
  }

  private entry(vm: ProcessVm, generation: number): VmEntry {
    const existing = this.current(vm, generation);
    if (existing) return existing;
    const entry: VmEntry = { vm, generation, records: new Map(), agents: new Map(), pendingSpawns: 0, streams: 0 };
    entry.unwatch = vm.onFailed?.((reason) => this.dropVm(vm.id, `VM ${vm.id} failed: ${reason}`));
    this.vms.set(vm.id, entry);
    return entry;
  }

  private running(vm: ProcessVm, generation: number, pid: number, what: string): ProcessRecord {
    const record = this.get(vm, generation, pid);
    if (!record.running) {
      const exit = record.exit;
      throw new InvalidStateError(
        `cannot ${what} process ${pid}: it has exited${exit ? ` (exit code ${exit.exitCode ?? 'none'}${exit.signal ? `, signal ${exit.signal}` : ''})` : ''}`,
        { details: { vm_id: vm.id, pid, state: 'exited' } },
      );
    }
    return record;
  }

  /** Evicts the oldest exited record when the VM is at its maximum; throws VmBusyError when all are running. */
  private makeRoom(entry: VmEntry): void {
    while (entry.records.size + entry.pendingSpawns >= this.maxProcesses) {
      const oldestExited = [...entry.records.values()].find((r) => !r.running);
      if (!oldestExited) {
        throw new VmBusyError(
          `VM ${entry.vm.id} already runs ${entry.records.size + entry.pendingSpawns} processes started through the API (at most ${this.maxProcesses}); wait for one to exit or signal one`,
          { details: { vm_id: entry.vm.id, running: entry.records.size + entry.pendingSpawns, max: this.maxProcesses } },
        );
      }
      entry.records.delete(oldestExited.pid);
      oldestExited.drop(`process ${oldestExited.pid} was dropped to make room for newer processes (at most ${this.maxProcesses} per VM)`);
    }
  }

  /** Listens to `agent`'s process events once per connection (reconnectAgent replaces the client). */
  private subscribe(entry: VmEntry, agent: ProcessAgent): AgentSubscription {
    const known = entry.agents.get(agent);
    if (known) return known;
    const sub: AgentSubscription = { unsubscribe: () => undefined, pendingSpawns: 0, early: [], earlyBytes: 0 };
    sub.unsubscribe = agent.onProcessEvent((event) => {
      const record = entry.records.get(event.pid);
      if (record?.running) return apply(record, event);
      // Not (yet) ours: keep it only while a spawn on this connection is unanswered.
      if (sub.pendingSpawns === 0) return;
      const size = event.type === 'exit' ? 0 : event.data.length;
      if (sub.early.length >= EARLY_EVENTS_MAX || sub.earlyBytes + size > EARLY_BYTES_MAX) return;
      sub.early.push(event);
      sub.earlyBytes += size;
    });
    entry.agents.set(agent, sub);
    return sub;
  }
}

function apply(record: ProcessRecord, event: ProcessAgentEvent): void {
  if (event.type === 'exit') record.appendExit({ exitCode: event.exitCode, signal: event.signal, durationMs: event.durationMs });
  else record.appendOutput(event.type, event.data);
}
