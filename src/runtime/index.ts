/**
 * The runtime: what every tfc process that makes VMs (the daemon, the local
 * CLI commands, the benchmarks) assembles from its config, in one place
 * (`composeRuntime`): store, drivers, networking, VM service, golden
 * snapshots; plus start-up reconciliation and the API token that the server
 * and its clients share.
 *
 * This module wires; it must not hold VM logic, serve HTTP or parse argv.
 * It may be imported by daemon/, cli/ and bench/, never by the modules it
 * wires (vm/, vmm/, net/, snapshot/, store/).
 */
export { composeRuntime, type ComposeOptions, type Runtime } from './compose.js';
export { reconcileAtStart, type ReconcileReport } from './reconcile.js';
export { prepareNetworking } from './networking.js';
export { loadOrCreateToken, readToken, tokenPath, type ApiToken } from './token.js';
