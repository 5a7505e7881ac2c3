/**
 * The daemon (`tfc serve`): the runtime (see runtime/composeRuntime) plus
 * pools, metrics and the REST API, and their shutdown. Nothing outside
 * cli/commands/serve.ts and the benchmarks imports it.
 */
export { startDaemon, VERSION, type Daemon, type DaemonOptions } from './daemon.js';
