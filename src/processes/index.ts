/**
 * Processes started in VMs through the API, on the host side: a registry
 * (per VM, pid -> record) whose records keep a bounded, numbered event log
 * of each process's output and exit, so output can be streamed as it
 * arrives and a client that reconnects resumes where it left off. Fed by
 * the guest agent's process events (AgentClient.onProcessEvent).
 *
 * Must not import the HTTP framework (the API layer turns records into
 * Server-Sent Events) nor reach into VMs beyond their agent.
 */
export { ProcessEventLog, DEFAULT_EVENT_LOG_BOUNDS, type EventLogBounds, type ExitInfo, type LoggedEvent, type OutputStream } from './event-log.js';
export { ProcessRecord, type RecordNotice } from './process-record.js';
export { ProcessRegistry, DEFAULT_MAX_PROCESSES_PER_VM, DEFAULT_MAX_STREAMS_PER_VM, type ProcessRegistryOptions } from './registry.js';
export { PROCESS_SIGNALS, type ProcessAgent, type ProcessAgentEvent, type ProcessSignal, type ProcessSpawnRequest, type ProcessVm } from './types.js';
