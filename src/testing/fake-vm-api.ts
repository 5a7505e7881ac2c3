/**
 * Test support: a listening API (the real app) over one VM of the fake
 * driver (the real agent on this host) and no pools, for tests of routes
 * and CLI commands that need a running VM behind HTTP. Test-only.
 */
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../api/app.js';
import type { ApiDeps } from '../api/deps.js';
import type { Vm } from '../vm/index.js';
import type { FakeRuntime } from './fake-runtime.js';

export interface FakeVmApi {
  vm: Vm;
  app: FastifyInstance;
  /** Base URL, e.g. http://127.0.0.1:PORT. */
  base: string;
}

/** Creates a VM in `rt` and serves the API over it on a free loopback port; close `app` and `rt` after. */
export async function listenFakeVmApi(rt: FakeRuntime, token: string): Promise<FakeVmApi> {
  const vm = await rt.service.create({ profile: rt.profile });
  const deps = {
    token,
    version: '0.0.0-test',
    pools: { list: () => [], poolOf: () => undefined, get: () => undefined },
    service: rt.service,
    repo: rt.repo,
  } as unknown as ApiDeps;
  const app = await buildApp(deps);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { vm, app, base };
}
