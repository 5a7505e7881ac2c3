import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { checkBearer } from './auth.js';
import type { ApiDeps } from './deps.js';
import { toHttpError } from './errors.js';
import { poolRoutes } from './routes/pools.js';
import { vmRoutes } from './routes/vms.js';

const PUBLIC_ROUTES = new Set(['/v1/health', '/v1/openapi.json']);
/** Largest file upload: the agent's write_file limit (a frame of base64). */
const MAX_UPLOAD_BYTES = 12 * 1024 * 1024;

/**
 * Builds the REST API (not listening; tests call `app.inject`). Routes only
 * translate HTTP to calls on pools and VMs; every error goes through
 * `toHttpError`.
 */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  // removeAdditional off: an unknown field is a client mistake to report, not to drop silently.
  const app = Fastify({ logger: false, bodyLimit: MAX_UPLOAD_BYTES, forceCloseConnections: true, ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
  await app.register(swagger, {
    openapi: {
      info: { title: 'terraphim-firecracker', version: deps.version, description: 'Isolated, ready-to-use Linux microVMs from warm pools' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err, req, reply) => {
    const mapped = toHttpError(err);
    // Exhaustion is back-pressure, not a fault: warn, do not alarm.
    const level = mapped.body.error.code === 'POOL_EXHAUSTED' ? 'warn' : 'error';
    if (mapped.status >= 500) deps.logger?.[level]({ err, method: req.method, url: req.url, code: mapped.body.error.code }, mapped.body.error.message);
    void reply.code(mapped.status).headers(mapped.headers).send(mapped.body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}; see GET /v1/openapi.json` } });
  });
  app.addHook('onRequest', async (req) => {
    if (PUBLIC_ROUTES.has(req.url.split('?')[0])) return;
    checkBearer(req.headers.authorization, deps.token);
  });

  app.get('/v1/health', { schema: { summary: 'Liveness and pool summary (no auth)', security: [] } }, async () => ({
    status: 'ok',
    version: deps.version,
    pools: deps.pools.list().map((p) => ({ name: p.name, ready: p.ready, booting: p.booting, allocated: p.allocated, target: p.target })),
  }));
  poolRoutes(app, deps);
  vmRoutes(app, deps);
  app.get('/v1/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)' } }, async (_req, reply) => {
    if (!deps.metrics) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'metrics are not enabled in this server' } });
    reply.header('content-type', deps.metrics.contentType);
    return deps.metrics.render();
  });
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}
