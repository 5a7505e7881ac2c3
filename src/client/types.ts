/**
 * Request and answer types of the REST API, derived at compile time (with
 * json-schema-to-ts's FromSchema) from the very JSON schemas the server
 * validates with (src/api/schemas.ts), so the two cannot drift and nothing
 * is generated or checked in. Only shapes the server has no schema for
 * (health, SSE events, snapshots from newer daemons) are written here.
 */
import type { FromSchema } from 'json-schema-to-ts';
import type * as S from '../api/schemas.js';

export type Vm = FromSchema<typeof S.VmBody>;
export type Pool = FromSchema<typeof S.PoolBody>;
export type Phase = FromSchema<typeof S.Phase>;
export type ErrorEnvelope = FromSchema<typeof S.ErrorBody>;
export type AllocateRequest = FromSchema<typeof S.AllocateRequest>;
export interface Allocation {
  vm: Vm;
  /** Time the daemon took to hand out the VM. */
  allocation_ms: number;
}
export type ExecRequest = FromSchema<typeof S.ExecRequest>;
export type ExecResult = FromSchema<typeof S.ExecResponse>;
export type SpawnRequest = FromSchema<typeof S.SpawnRequest>;
export type SpawnResult = FromSchema<typeof S.SpawnResponse>;
export type ProcessInfo = FromSchema<typeof S.ProcessBody>;
export type StdinResult = FromSchema<typeof S.StdinResponse>;
export type ProcessSignal = FromSchema<typeof S.SignalRequest>['signal'];
export type PtySize = FromSchema<typeof S.ResizeRequest>;
export type OutputEncoding = NonNullable<FromSchema<typeof S.OutputQuery>['encoding']>;
export type DirEntry = FromSchema<typeof S.DirEntry>;
export type FileList = FromSchema<typeof S.ListResponse>;
export type FileStat = FromSchema<typeof S.StatResponse>;
export type MkdirRequest = FromSchema<typeof S.MkdirRequest>;
export type MkdirResult = FromSchema<typeof S.MkdirResponse>;
export type RemoveResult = FromSchema<typeof S.RemoveResponse>;
export type RunRequest = FromSchema<typeof S.RunRequest>;
export type RunResult = FromSchema<typeof S.RunResponse>;

/** GET /v1/health (the route has no response schema). */
export interface Health {
  status: 'ok';
  version: string;
  pools: Array<Pick<Pool, 'name' | 'ready' | 'booting' | 'allocated' | 'target'>>;
}

/** One event of a process's output stream (GET .../processes/{pid}/output, docs/processes.md). */
export type ProcessEvent =
  | { type: 'stdout' | 'stderr'; id?: number; data: string }
  | { type: 'gap'; id?: number; from_id: number; to_id: number; lost_events: number; lost_bytes: number; exact: boolean }
  | { type: 'exit'; id?: number; exit_code: number | null; signal: string | null; duration_ms: number };

/**
 * A snapshot of a running VM (daemons with live snapshots, issue 10). Written
 * here because the daemon keeps this schema inside its route module
 * (src/api/routes/snapshots.ts), which the client must not import.
 */
export interface SnapshotInfo {
  id: string;
  vm_id: string;
  name: string | null;
  created_at: string;
  profile?: string;
  driver?: string;
  size_bytes: number;
  pause_ms: number;
  files?: { state?: string; scratch?: string | null };
}

/** POST /v1/vms/{id}/snapshots. */
export interface SnapshotCreated {
  snapshot_id: string;
  pause_ms: number;
  size_bytes: number;
  snapshot?: SnapshotInfo;
}

/** POST /v1/snapshots/{id}/fork. */
export interface ForkResult {
  vms: Vm[];
}

/** POST /v1/vms/{id}/pause {persist: true}: the VM is on disk, its memory freed; `resume` brings it back. */
export interface PausedToDisk {
  id: string;
  state: 'paused_to_disk';
  snapshot: SnapshotInfo;
}
