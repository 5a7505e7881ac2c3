/**
 * The Terraphim execution API: GET /health and /api/* with the request and
 * response shapes of the Rust `VmExecutionClient` and `FcctlBridge` in
 * terraphim/terraphim-ai (crates/terraphim_multi_agent/src/vm_execution/),
 * so Terraphim agents use this daemon with nothing changed but a base URL.
 * A thin layer: it maps vm_type to pools (aliases from config
 * `[terraphim]`), keeps one VM per agent_id and an execution history (in
 * the store), and runs code through VMs' exec. It must not reach into VMM
 * or snapshot internals. See docs/terraphim-api.md.
 */
export { terraphimRoutes } from './routes.js';
export { terraphimOptionsFromConfig, type TerraphimOptions } from './options.js';
export type { TerraphimSnapshots } from './snapshots.js';
export * from './models.js';
