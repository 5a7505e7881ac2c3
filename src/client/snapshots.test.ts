import type { FromSchema } from 'json-schema-to-ts';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { LiveSnapshotView, PausedToDiskView } from '../api/routes/snapshots.js';
import type * as S from '../api/schemas.js';
import {
  SnapshotNotFoundError,
  TfcClient,
  type CreateSnapshotRequest,
  type ForkRequest,
  type ForkResult,
  type PausedToDisk,
  type PauseRequest,
  type ResumeRequest,
  type RollbackRequest,
  type SnapshotCreated,
  type SnapshotInfo,
  type SnapshotList,
  type Vm,
} from './index.js';

// The snapshot calls send exactly the requests of the live-snapshot routes
// (src/api/routes/snapshots.ts, docs/snapshots.md): method, path and body.
describe('TfcClient snapshot calls', () => {
  const vm = { id: 'vm-0123456789ab', state: 'running', profile: 'minimal', driver: 'qemu' };
  const snap: SnapshotInfo = {
    id: 'snap-0123456789ab',
    vm_id: vm.id,
    name: null,
    created_at: '2026-11-30T00:00:00Z',
    profile: 'minimal',
    driver: 'qemu',
    size_bytes: 10,
    pause_ms: 3,
    files: { state: '/data/live-snapshots/snap-0123456789ab/state', scratch: null, memory: null },
  };

  function recording(answer: (method: string, path: string) => { status: number; body?: unknown }) {
    const seen: Array<{ method: string; path: string; body: unknown }> = [];
    const fetchImpl: typeof fetch = async (input, init) => {
      const url = new URL(String(input));
      const method = init?.method ?? 'GET';
      seen.push({ method, path: url.pathname + url.search, body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined });
      const a = answer(method, url.pathname);
      return new Response(a.body === undefined ? null : JSON.stringify(a.body), { status: a.status });
    };
    return { seen, client: new TfcClient({ url: 'http://tfc.test', token: 't', fetch: fetchImpl }) };
  }

  it('snapshot, list, get, rollback, fork, delete, pause to disk', async () => {
    const { seen, client } = recording((method, path) => {
      if (method === 'POST' && path.endsWith('/snapshots')) return { status: 201, body: { snapshot_id: snap.id, pause_ms: 3, size_bytes: 10, snapshot: snap } };
      if (path === '/v1/snapshots') return { status: 200, body: { snapshots: [snap] } };
      if (method === 'GET') return { status: 200, body: snap };
      if (path.endsWith('/rollback')) return { status: 200, body: vm };
      if (path.endsWith('/fork')) return { status: 201, body: { vms: [vm, { ...vm, id: 'vm-0123456789ac' }] } };
      if (path.endsWith('/pause')) return { status: 200, body: { id: vm.id, state: 'paused_to_disk', snapshot: snap } };
      return { status: 204 };
    });
    expect((await client.snapshot(vm.id, { name: 'before' })).snapshot_id).toBe(snap.id);
    expect(await client.listSnapshots({ vm_id: vm.id })).toEqual([snap]);
    expect(await client.getSnapshot(snap.id)).toEqual(snap);
    expect((await client.rollback(vm.id, snap.id)).id).toBe(vm.id);
    expect((await client.fork(snap.id, 2)).vms).toHaveLength(2);
    await client.deleteSnapshot(snap.id);
    expect((await client.pause(vm.id, { persist: true })).state).toBe('paused_to_disk');
    expect(seen).toEqual([
      { method: 'POST', path: `/v1/vms/${vm.id}/snapshots`, body: { name: 'before' } },
      { method: 'GET', path: `/v1/snapshots?vm_id=${vm.id}`, body: undefined },
      { method: 'GET', path: `/v1/snapshots/${snap.id}`, body: undefined },
      { method: 'POST', path: `/v1/vms/${vm.id}/rollback`, body: { snapshot_id: snap.id } },
      { method: 'POST', path: `/v1/snapshots/${snap.id}/fork`, body: { count: 2 } },
      { method: 'DELETE', path: `/v1/snapshots/${snap.id}`, body: undefined },
      { method: 'POST', path: `/v1/vms/${vm.id}/pause`, body: { persist: true } },
    ]);
  });

  it('an unknown snapshot is a SnapshotNotFoundError', async () => {
    const { client } = recording(() => ({ status: 404, body: { error: { code: 'SNAPSHOT_NOT_FOUND', message: 'no snapshot snap-0123456789ab' } } }));
    await expect(client.getSnapshot(snap.id)).rejects.toBeInstanceOf(SnapshotNotFoundError);
  });

  // Compile-time only (npm run typecheck:tests; at run time expectTypeOf checks nothing): the client's
  // snapshot types are FromSchema of the schemas the daemon validates and serializes with, and the
  // same types the daemon's handlers return.
  it('its snapshot types are the types of the server schemas', () => {
    expectTypeOf<SnapshotInfo>().toEqualTypeOf<FromSchema<typeof S.SnapshotBody>>();
    expectTypeOf<SnapshotInfo>().toEqualTypeOf<LiveSnapshotView>();
    expectTypeOf<SnapshotInfo['files']>().toEqualTypeOf<{ [k: string]: unknown; state: string; scratch: string | null; memory: string | null }>();
    expectTypeOf<SnapshotCreated>().toEqualTypeOf<FromSchema<typeof S.SnapshotCreatedResponse>>();
    expectTypeOf<SnapshotList>().toEqualTypeOf<FromSchema<typeof S.SnapshotListResponse>>();
    expectTypeOf<CreateSnapshotRequest>().toEqualTypeOf<{ name?: string }>();
    expectTypeOf<RollbackRequest>().toEqualTypeOf<FromSchema<typeof S.RollbackRequest>>();
    expectTypeOf<ForkRequest>().toEqualTypeOf<{ count: number; ttl_ms?: number }>();
    expectTypeOf<ResumeRequest>().toEqualTypeOf<{ ttl_ms?: number }>();
    expectTypeOf<ForkResult>().toEqualTypeOf<FromSchema<typeof S.ForkResponse>>();
    expectTypeOf<ForkResult['vms'][number]>().toEqualTypeOf<Vm>();
    expectTypeOf<PauseRequest>().toEqualTypeOf<{ persist?: boolean }>();
    expectTypeOf<PausedToDisk>().toEqualTypeOf<PausedToDiskView>();
    expectTypeOf<PausedToDisk['state']>().toEqualTypeOf<'paused_to_disk'>();
  });
});
