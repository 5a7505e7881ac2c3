import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Socket } from 'node:net';
import { UriTooLongError } from '../errors/index.js';
import { checkBearer } from './auth.js';
import type { ApiDeps } from './deps.js';
import { envelope, toHttpError, type HttpErrorResponse } from './errors.js';
import { DEFAULT_API_LIMITS, MAX_JSON_BODY_BYTES, MAX_PARAM_LENGTH, MAX_URL_LENGTH, headersTimeoutMs, type ApiLimits } from './limits.js';
import { lingerOnClose } from './linger.js';
import { poolRoutes } from './routes/pools.js';
import { vmRoutes } from './routes/vms.js';
import { leaseRoutes } from './routes/leases.js';
import { processRoutes } from './routes/processes.js';
import { runRoutes } from './routes/run.js';
import { snapshotRoutes } from './routes/snapshots.js';
import { eventRoutes } from './routes/events.js';
import { alertRoutes } from './routes/alerts.js';
import { clusterRoutes } from './routes/cluster.js';
import { isUiPath, uiRoutes } from './routes/ui.js';
import { terraphimRoutes } from './terraphim/index.js';

// /health is the Terraphim client's health check, which sends no token (docs/terraphim-api.md).
const PUBLIC_ROUTES = new Set(['/v1/health', '/v1/openapi.json', '/health']);

/** The request URL as a message may quote it: a hostile URL can be kilobytes long. */
export function shortUrl(url: string): string {
  return url.length > 120 ? `${url.slice(0, 120)}... (${url.length} characters)` : url;
}

/** Sends a mapped error; an answer sent before the body was read closes the connection gently. */
function sendError(req: FastifyRequest, reply: FastifyReply, mapped: HttpErrorResponse): void {
  if (!req.raw.complete) {
    void reply.header('connection', 'close');
    lingerOnClose(req.raw);
  }
  void reply.code(mapped.status).headers(mapped.headers).send(mapped.body);
}

/**
 * Errors Node's HTTP server meets before Fastify sees a request (a request
 * timeout, oversized headers, a malformed request line) get the envelope
 * too, written on the raw socket, which is then closed.
 */
function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const mapped =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? envelope(
          'REQUEST_TIMEOUT',
          'the request (headers and body) did not arrive within the server request timeout (api.request_timeout_ms); send it without pauses',
        )
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? envelope('REQUEST_HEADERS_TOO_LARGE', 'the request line and headers are larger than the server reads (16 KiB); send a shorter URL and fewer headers')
        : envelope('INVALID_ARGUMENT', `malformed HTTP request (${err.code ?? err.message}); this server speaks HTTP/1.1`);
  const body = JSON.stringify(mapped.body);
  // An answer already under way cannot take a second status line.
  const started = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (socket.writable && !started) {
    socket.write(
      `HTTP/1.1 ${mapped.status} ${mapped.status === 408 ? 'Request Timeout' : mapped.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * Builds the REST API (not listening; tests call `app.inject`). Routes only
 * translate HTTP to calls on pools and VMs; every error, Fastify's own
 * included, goes through `toHttpError` and leaves as the error envelope.
 */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const limits = resolveLimits(deps.limits);
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_JSON_BODY_BYTES,
    forceCloseConnections: true,
    // Node's own request timeout (whole request received) and headers timeout; the handler's time is bounded by exec timeouts.
    requestTimeout: limits.requestTimeoutMs,
    http: {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: headersTimeoutMs(limits),
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.requestTimeoutMs / 4))),
    },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    clientErrorHandler,
    // Cluster mode: `/v1/vms/THIS-NODE~vm-…` is served by the ordinary routes as `/v1/vms/vm-…`.
    ...(deps.cluster ? { rewriteUrl: (req: { url?: string }) => deps.cluster!.rewriteUrl(req.url ?? '/') } : {}),
    frameworkErrors: (err: FastifyError, req, reply) => sendError(req, reply, toHttpError(err)),
    // removeAdditional off: an unknown field is a client mistake to report, not to drop silently.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'terraphim-firecracker', version: deps.version, description: 'Isolated, ready-to-use Linux microVMs from warm pools' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  // JSON everywhere else: a text/plain body is a 415, not a string that fails the schema.
  app.removeContentTypeParser('text/plain');
  // File uploads: the raw request stream goes to the route unread, which streams it into the guest.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  app.setErrorHandler((err, req, reply) => {
    const mapped = toHttpError(err);
    // Exhaustion is back-pressure, not a fault: warn, do not alarm.
    const level = mapped.body.error.code === 'POOL_EXHAUSTED' ? 'warn' : 'error';
    if (mapped.status >= 500)
      deps.logger?.[level]({ err, method: req.method, url: shortUrl(req.url), code: mapped.body.error.code }, mapped.body.error.message);
    sendError(req, reply, mapped);
  });
  app.setNotFoundHandler((req, reply) => {
    sendError(req, reply, envelope('NOT_FOUND', `no route ${req.method} ${shortUrl(req.url)}; see GET /v1/openapi.json`));
  });
  app.addHook('onRequest', async (req) => {
    if (req.url.length > MAX_URL_LENGTH) throw new UriTooLongError(`the URL is ${req.url.length} characters long; at most ${MAX_URL_LENGTH} are accepted`);
    const path = req.url.split('?')[0];
    // The dashboard's page and assets carry no data; it sends the token to /v1 itself.
    if (PUBLIC_ROUTES.has(path) || isUiPath(path)) return;
    // A call another node forwarded carries the cluster token instead (docs/cluster.md).
    if (deps.cluster?.isNodeCall(req.headers)) return;
    checkBearer(req.headers.authorization, deps.token);
  });
  if (deps.cluster) {
    const cluster = deps.cluster;
    // Calls for another node's VMs, and allocations placed elsewhere, are forwarded before the body is read (streams pass through).
    app.addHook('onRequest', async (req, reply) => {
      const plan = cluster.plan(req.method, req.raw.url ?? req.url, req.headers);
      if (plan.kind === 'local') return;
      reply.hijack();
      cluster.forward(req.raw, reply.raw, plan);
      return reply;
    });
    // This node's VM ids leave as `NODE~vm-…`.
    app.addHook('onSend', async (req, reply, payload) =>
      typeof payload === 'string' && String(reply.getHeader('content-type') ?? '').includes('json') ? cluster.nameIds(payload, req.url) : payload,
    );
  }

  app.get('/v1/health', { schema: { summary: 'Liveness and pool summary (no auth)', security: [] } }, async () => ({
    status: 'ok',
    version: deps.version,
    pools: deps.pools.list().map((p) => ({ name: p.name, ready: p.ready, booting: p.booting, allocated: p.allocated, target: p.target })),
  }));
  poolRoutes(app, deps);
  vmRoutes(app, deps, limits);
  leaseRoutes(app, deps);
  processRoutes(app, deps, limits);
  runRoutes(app, deps);
  snapshotRoutes(app, deps);
  eventRoutes(app, deps);
  alertRoutes(app, deps);
  clusterRoutes(app, deps);
  terraphimRoutes(app, deps, limits);
  uiRoutes(app);
  app.get('/v1/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)' } }, async (_req, reply) => {
    if (!deps.metrics) return reply.code(404).send(envelope('NOT_FOUND', 'metrics are not enabled in this server').body);
    reply.header('content-type', deps.metrics.contentType);
    return deps.metrics.render();
  });
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.ready();
  return app;
}

/** The limits in force: each one given in `deps.limits` (config.api may carry other keys too), else the default. */
function resolveLimits(given: Partial<ApiLimits> = {}): ApiLimits {
  return {
    maxExecTimeoutMs: given.maxExecTimeoutMs ?? DEFAULT_API_LIMITS.maxExecTimeoutMs,
    requestTimeoutMs: given.requestTimeoutMs ?? DEFAULT_API_LIMITS.requestTimeoutMs,
    maxUploadBytes: given.maxUploadBytes ?? DEFAULT_API_LIMITS.maxUploadBytes,
    maxDownloadBytes: given.maxDownloadBytes ?? DEFAULT_API_LIMITS.maxDownloadBytes,
  };
}
