/**
 * Request and answer types of the REST API, derived at compile time (with
 * json-schema-to-ts's FromSchema) from the very JSON schemas the server
 * validates with (src/api/schemas.ts), so the two cannot drift and nothing
 * is generated or checked in. Only shapes the server has no schema for
 * (health, SSE events) are written here.
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

// Snapshots of running VMs (daemons with live snapshots, issue 10; schemas in src/api/schemas-snapshots.ts).
export type SnapshotInfo = FromSchema<typeof S.SnapshotBody>;
export type SnapshotFiles = FromSchema<typeof S.SnapshotFiles>;
/** POST /v1/vms/{id}/snapshots (the daemon also takes no body). */
export type CreateSnapshotRequest = NonNullable<FromSchema<typeof S.CreateSnapshotRequest>>;
export type SnapshotCreated = FromSchema<typeof S.SnapshotCreatedResponse>;
export type SnapshotListQuery = FromSchema<typeof S.SnapshotListQuery>;
export type SnapshotList = FromSchema<typeof S.SnapshotListResponse>;
export type RollbackRequest = FromSchema<typeof S.RollbackRequest>;
export type ForkRequest = FromSchema<typeof S.ForkRequest>;
export type ResumeRequest = NonNullable<FromSchema<typeof S.ResumeRequest>>;
export type ForkResult = FromSchema<typeof S.ForkResponse>;
/** POST /v1/vms/{id}/pause (no body pauses in memory). */
export type PauseRequest = NonNullable<FromSchema<typeof S.PauseRequest>>;
/** POST /v1/vms/{id}/pause {persist: true}: the VM is on disk, its memory freed; `resume` brings it back. */
export type PausedToDisk = FromSchema<typeof S.PausedToDiskResponse>;
