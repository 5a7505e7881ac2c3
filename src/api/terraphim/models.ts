/**
 * The Terraphim execution API's wire types, field for field as the Rust
 * client declares them in terraphim/terraphim-ai
 * `crates/terraphim_multi_agent/src/vm_execution/models.rs` (read at commit
 * 1d8da19736c8cbdd7415b8605cf842d91d40d4d9). The structs carry no serde
 * attributes: fields keep their snake_case names, an `Option<T>` may be
 * missing or null (serde's derive treats a missing Option as None), every
 * other field is required, unknown fields are ignored, and `DateTime<Utc>`
 * travels as an RFC 3339 string. Types and JSON schemas only.
 */

/** `VmExecuteRequest` (models.rs). */
export interface VmExecuteRequest {
  agent_id: string;
  language: string;
  code: string;
  vm_id?: string | null;
  requirements: string[];
  timeout_seconds?: number | null;
  working_dir?: string | null;
  metadata?: unknown;
}

/** `VmExecuteResponse` (models.rs): `exit_code` is an i32, `duration_ms` a u64. */
export interface VmExecuteResponse {
  execution_id: string;
  vm_id: string;
  exit_code: number;
  stdout: string;
  stderr: string;
  duration_ms: number;
  started_at: string;
  completed_at: string;
  error: string | null;
}

/** `ParseExecuteRequest` (models.rs). */
export interface ParseExecuteRequest {
  agent_id: string;
  llm_response: string;
  auto_execute: boolean;
  auto_execute_threshold: number;
  vm_config?: unknown;
}

/** `CodeBlock` (models.rs): positions are byte offsets into `llm_response` (Rust `usize` into a `&str`). */
export interface CodeBlock {
  language: string;
  code: string;
  execution_confidence: number;
  start_pos: number;
  end_pos: number;
  metadata: unknown;
}

/** `ParseExecuteResponse` (models.rs). */
export interface ParseExecuteResponse {
  code_blocks: CodeBlock[];
  execution_results: VmExecuteResponse[];
  errors: string[];
}

/** `VmInstance` (models.rs); also the body of POST /api/vms and GET /api/vms/{id} (client.rs reads id, name, vm_type, status, ip_address). */
export interface VmInstance {
  id: string;
  name: string;
  vm_type: string;
  status: string;
  ip_address: string | null;
  created_at: string;
  last_activity: string | null;
}

/** `HistoryConfig` (models.rs). */
export interface HistoryConfig {
  enabled: boolean;
  snapshot_on_execution: boolean;
  snapshot_on_failure: boolean;
  auto_rollback_on_failure: boolean;
  max_history_entries: number;
  persist_history: boolean;
  integration_mode: string;
}

/** `VmExecutionConfig` (models.rs). */
export interface VmExecutionConfig {
  enabled: boolean;
  api_base_url: string;
  vm_pool_size: number;
  default_vm_type: string;
  execution_timeout_ms: number;
  allowed_languages: string[];
  auto_provision: boolean;
  code_validation: boolean;
  max_code_length: number;
  history: HistoryConfig;
}

/** `VmPoolResponse` (models.rs). */
export interface VmPoolResponse {
  agent_id: string;
  available_vms: VmInstance[];
  in_use_vms: VmInstance[];
  pool_config: VmExecutionConfig;
}

/** `CommandHistoryEntry` (models.rs). */
export interface CommandHistoryEntry {
  id: string;
  vm_id: string;
  agent_id: string;
  command: string;
  language: string;
  snapshot_id: string | null;
  success: boolean;
  exit_code: number;
  stdout: string;
  stderr: string;
  executed_at: string;
  duration_ms: number;
}

/** `HistoryQueryResponse` (models.rs); fcctl_bridge.rs reads `history` or `entries`, and `total`. */
export interface HistoryQueryResponse {
  vm_id: string;
  entries: CommandHistoryEntry[];
  total: number;
}

const KIB = 1024;

/** Bounds on what a Terraphim client may send (the Rust side's own max_code_length default is 10,000 characters). */
export const TERRAPHIM_LIMITS = {
  /** `code` of one execution, in UTF-8 bytes (same as POST /v1/run). */
  maxCodeBytes: 1024 * KIB,
  /** `llm_response` of one parse-execute, in UTF-8 bytes. */
  maxLlmResponseBytes: 256 * KIB,
  /** Code blocks taken from one llm_response (the rest are dropped and named in `errors`). */
  maxCodeBlocks: 64,
  /** Blocks one parse-execute runs. */
  maxExecutedBlocks: 8,
  /** Ids, names, agent ids, languages, vm types. */
  maxIdLength: 128,
  /** History entries kept per VM (HistoryConfig::default max_history_entries); default of config terraphim.history_max_entries. */
  maxHistoryEntries: 100,
  /** Output kept per stream in a history entry (responses carry the full output, up to the exec bound). */
  maxHistoryOutputBytes: 16 * KIB,
  /** Code kept in a history entry's `command` (requests may carry up to maxCodeBytes). */
  maxHistoryCommandBytes: 64 * KIB,
  /** VMs with history kept (least recently written dropped first); default of config terraphim.history_max_vms. */
  maxHistoryVms: 1024,
  /** Agents with a VM at once. */
  maxAgents: 1024,
  /** Named VMs (POST /api/vms) remembered. */
  maxNamedVms: 4096,
  /** Largest JSON body of an /api route. */
  maxBodyBytes: 2 * 1024 * KIB,
} as const;

const id = { type: 'string', minLength: 1, maxLength: TERRAPHIM_LIMITS.maxIdLength } as const;
const optionalString = (maxLength: number) => ({ anyOf: [{ type: 'string', maxLength }, { type: 'null' }] }) as const;

/** JSON schema of `VmExecuteRequest`: required exactly as serde requires (non-Option fields). */
export const VmExecuteRequestSchema = {
  type: 'object',
  required: ['agent_id', 'language', 'code', 'requirements'],
  properties: {
    agent_id: id,
    language: id,
    code: { type: 'string' },
    vm_id: optionalString(TERRAPHIM_LIMITS.maxIdLength),
    requirements: { type: 'array', maxItems: 256, items: { type: 'string', maxLength: 256 } },
    timeout_seconds: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'null' }] },
    working_dir: optionalString(4095),
    metadata: {},
  },
} as const;

export const ParseExecuteRequestSchema = {
  type: 'object',
  required: ['agent_id', 'llm_response', 'auto_execute', 'auto_execute_threshold'],
  properties: {
    agent_id: id,
    llm_response: { type: 'string' },
    auto_execute: { type: 'boolean' },
    auto_execute_threshold: { type: 'number' },
    vm_config: {},
  },
} as const;

/** The body client.rs `provision_vm` sends: `json!({"vm_type": ..., "vm_name": ...})`. */
export const CreateVmRequestSchema = {
  type: 'object',
  required: ['vm_type'],
  properties: { vm_type: id, vm_name: { type: 'string', maxLength: 256 } },
} as const;

/** fcctl_bridge.rs `create_snapshot_http` body. */
export const CreateSnapshotRequestSchema = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 256 }, description: { type: 'string', maxLength: 4096 } },
} as const;
