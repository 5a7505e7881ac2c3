/**
 * The daemon: wiring config -> store -> drivers -> VM service -> snapshots
 * -> pools -> API, start-up reconciliation, the API token, and shutdown.
 */
export { startDaemon, VERSION, type Daemon, type DaemonOptions } from './daemon.js';
export { reconcileAtStart, type ReconcileReport } from './reconcile.js';
export { loadOrCreateToken, readToken, tokenPath, type ApiToken } from './token.js';
