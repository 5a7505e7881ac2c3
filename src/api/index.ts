/**
 * The REST API: Fastify routes that parse requests into calls on pools and
 * VMs, bearer-token auth, the OpenAPI document, and the one function that
 * maps typed errors to HTTP statuses. Core modules never import this.
 */
export { buildApp } from './app.js';
export { toHttpError } from './errors.js';
export type { ApiDeps } from './deps.js';
export type { VmView } from './vm-view.js';
export { DEFAULT_API_LIMITS, type ApiLimits } from './limits.js';
