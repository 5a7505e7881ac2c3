import type { FastifyInstance } from 'fastify';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_TOKEN, fakeDeps, fakeVm } from '../../testing/fake-api-deps.js';
import { UI_APP_JS, UI_CSS, UI_HTML, UI_VIEW_JS } from '../../ui/index.js';
import { buildApp } from '../app.js';
import { UI_CSP } from './ui.js';

// The dashboard's route: public static assets with a strict CSP; the data stays behind the token.
describe('GET /ui', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildApp(fakeDeps(fakeVm()));
  });
  afterAll(async () => {
    await app.close();
  });
  const get = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers });

  it('serves the page without a token, with the CSP and no-cache', async () => {
    for (const url of ['/ui', '/ui/', '/ui?x=1']) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['content-security-policy']).toBe(UI_CSP);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.body).toBe(UI_HTML);
    }
    expect(UI_CSP).toMatch(/^default-src 'self';/);
  });

  it('serves each asset with its content type', async () => {
    const expected: Array<[string, string, string | null]> = [
      ['/ui/app.js', 'text/javascript; charset=utf-8', UI_APP_JS],
      ['/ui/view.js', 'text/javascript; charset=utf-8', UI_VIEW_JS],
      ['/ui/lib.js', 'text/javascript; charset=utf-8', null],
      ['/ui/style.css', 'text/css; charset=utf-8', UI_CSS],
      ['/ui/favicon.svg', 'image/svg+xml', null],
    ];
    for (const [url, type, body] of expected) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toBe(type);
      expect(res.headers['content-security-policy'], url).toBe(UI_CSP);
      if (body !== null) expect(res.body).toBe(body);
    }
  });

  it('keeps the page free of inline scripts, inline styles and external URLs (the CSP would block them)', () => {
    const scripts = [...UI_HTML.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/src="\/ui\/[a-z]+\.js"/);
      expect(body.trim()).toBe('');
    }
    expect(UI_HTML).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    for (const text of [UI_HTML, UI_APP_JS, UI_VIEW_JS, UI_CSS]) expect(text).not.toMatch(/(?:src|href)=["']?(?:https?:)?\/\/|url\(\s*['"]?(?:https?:)?\/\//);
    // Data from the daemon goes in as text: no HTML sinks in the script.
    for (const text of [UI_APP_JS, UI_VIEW_JS]) expect(text).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
  });

  it('answers If-None-Match with 304 and an unknown asset with a 404 envelope', async () => {
    const first = await get('/ui/app.js');
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]{22}"$/);
    const again = await get('/ui/app.js', { 'if-none-match': `W/"other", ${etag}` });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expect((await get('/ui/app.js', { 'if-none-match': '"other"' })).statusCode).toBe(200);
    expect((await get('/ui/style.css')).headers.etag).not.toBe(etag);

    const missing = await get('/ui/secret.txt');
    expect(missing.statusCode).toBe(404);
    expect(JSON.parse(missing.body).error).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('secret.txt') });
    expect((await get('/ui/a/b.js')).statusCode).toBe(404);
  });

  it('leaves every /v1 route behind the token, also reached through /ui paths', async () => {
    expect((await get('/v1/pools')).statusCode).toBe(401);
    expect((await get('/v1/pools', { authorization: `Bearer ${FAKE_TOKEN}` })).statusCode).toBe(200);
    for (const url of ['/ui/../v1/pools', '/ui/%2e%2e/v1/pools', '/ui/..%2fv1%2fpools', '/uix', '/v1/pools?/ui/']) {
      const res = await get(url);
      expect(res.statusCode, url).not.toBe(200);
      expect(res.body, url).not.toContain('"pools"');
    }
  });

  it('does not resolve dot segments: a raw /ui/../v1 request over HTTP reaches no /v1 route', async () => {
    // app.inject normalizes URLs like a browser; a raw client need not, so this goes over a socket.
    const server = await buildApp(fakeDeps(fakeVm()));
    try {
      await server.listen({ host: '127.0.0.1', port: 0 });
      const { port } = server.server.address() as { port: number };
      const raw = (path: string) =>
        new Promise<string>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () => socket.end(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
          let text = '';
          socket.setEncoding('utf8').on('data', (d: string) => (text += d));
          socket.on('end', () => resolve(text)).on('error', reject);
        });
      expect(await raw('/v1/pools')).toMatch(/^HTTP\/1\.1 401 /);
      for (const path of ['/ui/../v1/pools', '/ui/./../v1/pools', '/ui//../v1/pools', '/ui/%2e%2e/v1/pools']) {
        const text = await raw(path);
        expect(text, path).toMatch(/^HTTP\/1\.1 404 /);
        expect(text, path).not.toContain('"pools"');
      }
    } finally {
      await server.close();
    }
  });

  it('is not in the OpenAPI document', async () => {
    const doc = JSON.parse((await get('/v1/openapi.json')).body) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/ui'))).toEqual([]);
  });
});
