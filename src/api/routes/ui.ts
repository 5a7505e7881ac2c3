import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UI_ASSETS, UI_PAGE, type UiAsset } from '../../ui/index.js';
import { envelope } from '../errors.js';

/**
 * The dashboard's Content-Security-Policy: scripts, styles, images and
 * fetches from this origin only (no inline script, no external URL), no
 * plugins, no framing, no form posts (the token form is handled in script).
 */
export const UI_CSP = "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'none'";

/**
 * `/ui` and everything under `/ui/` are public (the page and its static
 * assets carry no data; the page asks for the token and sends it to /v1).
 * `path` is the URL path without its query.
 */
export function isUiPath(path: string): boolean {
  return path === '/ui' || path.startsWith('/ui/');
}

const etags = new Map<UiAsset, string>();

/** A strong ETag from the asset's bytes, computed once per asset. */
function etagOf(asset: UiAsset): string {
  let tag = etags.get(asset);
  if (!tag) {
    tag = `"${createHash('sha256').update(asset.body).digest('base64url').slice(0, 22)}"`;
    etags.set(asset, tag);
  }
  return tag;
}

/** Whether If-None-Match names this ETag (weak comparison, as RFC 9110 asks for GET). */
function notModified(req: FastifyRequest, etag: string): boolean {
  const header = req.headers['if-none-match'];
  if (!header) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === etag;
  });
}

function send(req: FastifyRequest, reply: FastifyReply, asset: UiAsset): FastifyReply {
  const etag = etagOf(asset);
  // Revalidate every time (a cheap 304): a daemon upgrade must not leave an old app.js next to a new page.
  void reply.headers({
    'content-security-policy': UI_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
    etag,
  });
  if (notModified(req, etag)) return reply.code(304).send();
  return reply.type(asset.contentType).send(asset.body);
}

/** GET /ui (the dashboard page) and GET /ui/NAME (its script, helpers, stylesheet, icon). Public routes: see isUiPath. */
export function uiRoutes(app: FastifyInstance): void {
  const page = { schema: { hide: true } };
  app.get('/ui', page, async (req, reply) => send(req, reply, UI_PAGE));
  app.get('/ui/', page, async (req, reply) => send(req, reply, UI_PAGE));
  app.get<{ Params: { asset: string } }>('/ui/:asset', page, async (req, reply) => {
    const asset = UI_ASSETS.get(req.params.asset);
    if (!asset) {
      const mapped = envelope('NOT_FOUND', `the dashboard has no file ${JSON.stringify(req.params.asset.slice(0, 80))}; open /ui`);
      return reply.code(mapped.status).send(mapped.body);
    }
    return send(req, reply, asset);
  });
}
