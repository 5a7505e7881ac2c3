import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { SnapshotNotFoundError } from '../../errors/index.js';
import type { LiveSnapshotService } from '../../snapshot/live/index.js';
import { DetachedLeases } from '../../snapshot/live/detached-leases.js';
import type { LiveSnapshotRecord } from '../../store/index.js';
import { FAKE_TOKEN, fakeDeps, fakeVm, type FakeVm } from '../../testing/fake-api-deps.js';
import { buildApp } from '../app.js';

// The snapshot routes over the real app and a stand-in LiveSnapshotService:
// what the schemas (schemas-snapshots.ts) accept, and that every answer
// passes through its response schema with all its fields (a field missing
// from a schema would be dropped silently by the serializer).
const auth = { authorization: `Bearer ${FAKE_TOKEN}` };
const SNAP_ID = 'snap-0123456789ab';

function record(vm: FakeVm, over: Partial<LiveSnapshotRecord> = {}): LiveSnapshotRecord {
  return {
    id: SNAP_ID,
    vmId: vm.id,
    name: null,
    createdAt: '2026-11-30T00:00:00.000Z',
    dir: '/data/live-snapshots/snap-0123456789ab',
    files: { state: '/data/live-snapshots/snap-0123456789ab/state' },
    sizeBytes: 4096,
    pauseMs: 12.5,
    profile: 'minimal',
    driver: 'qemu',
    meta: { image: 'minimal', imageDigest: 'sha256:0', vcpus: 1, memoryMib: 128, kernelArgs: '', memoryBackend: false, network: false, diskMib: 0 },
    ...over,
  };
}

function fakeLiveSnapshots(vm: FakeVm, records: LiveSnapshotRecord[]) {
  const calls: string[] = [];
  const find = (id: string) => {
    const r = records.find((s) => s.id === id);
    if (!r) throw new SnapshotNotFoundError(`no snapshot ${id}`);
    return r;
  };
  const service = {
    async snapshot(_vm: unknown, request: { name?: string }) {
      calls.push(`snapshot ${request.name ?? '-'}`);
      return record(vm, { name: request.name ?? null });
    },
    list: (options: { vmId?: string }) => records.filter((r) => !options.vmId || r.vmId === options.vmId),
    get: find,
    delete: (id: string) => void find(id),
    async rollback(_vm: unknown, id: string) {
      calls.push(`rollback ${id}`);
      return { rollbackMs: 1, snapshot: find(id) };
    },
    async fork(id: string, count: number, options: { ttlMs?: number } = {}) {
      calls.push(`fork ${id} ${count}${options.ttlMs ? ` ttl ${options.ttlMs}` : ''}`);
      find(id);
      return Array.from({ length: count }, (_, i) => ({ ...fakeVm(), id: `vm-00000000000${i}` }));
    },
    async persist() {
      return record(vm, { meta: { ...record(vm).meta, persisted: true } });
    },
    persisted: () => null,
    leases: new DetachedLeases(() => undefined),
  };
  return { calls, service: service as unknown as LiveSnapshotService };
}

describe('snapshot routes', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function start(records: (vm: FakeVm) => LiveSnapshotRecord[] = () => []) {
    const vm = fakeVm();
    const live = fakeLiveSnapshots(vm, records(vm));
    app = await buildApp({ ...fakeDeps(vm), liveSnapshots: live.service });
    return { vm, app, calls: live.calls };
  }

  it('snapshot: 201 with the whole snapshot, files.memory null when the state file holds the memory (QEMU)', async () => {
    const { vm, app } = await start();
    const r = await app.inject({ method: 'POST', url: `/v1/vms/${vm.id}/snapshots`, headers: auth, payload: { name: 'before' } });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toEqual({
      snapshot_id: SNAP_ID,
      pause_ms: 12.5,
      size_bytes: 4096,
      snapshot: {
        id: SNAP_ID,
        vm_id: vm.id,
        name: 'before',
        created_at: '2026-11-30T00:00:00.000Z',
        profile: 'minimal',
        driver: 'qemu',
        size_bytes: 4096,
        pause_ms: 12.5,
        files: { state: '/data/live-snapshots/snap-0123456789ab/state', scratch: null, memory: null },
      },
    });
    // No body at all is a snapshot without a name.
    expect((await app.inject({ method: 'POST', url: `/v1/vms/${vm.id}/snapshots`, headers: auth })).statusCode).toBe(201);
  });

  it('a Firecracker snapshot lists its memory file and scratch copy', async () => {
    const { app } = await start((vm) => [
      record(vm, {
        driver: 'firecracker',
        files: { state: '/d/state', scratch: '/d/scratch.ext4', memory: '/d/memory' },
      }),
    ]);
    const one = await app.inject({ method: 'GET', url: `/v1/snapshots/${SNAP_ID}`, headers: auth });
    expect(one.json().files).toEqual({ state: '/d/state', scratch: '/d/scratch.ext4', memory: '/d/memory' });
    const list = await app.inject({ method: 'GET', url: '/v1/snapshots', headers: auth });
    expect(list.json().snapshots.map((s: { files: unknown }) => s.files)).toEqual([one.json().files]);
  });

  it('rejects bad names, ids, counts and unknown fields with 400 INVALID_ARGUMENT before reaching the service', async () => {
    const { vm, app, calls } = await start((vm) => [record(vm)]);
    const bad = [
      { method: 'POST' as const, url: `/v1/vms/${vm.id}/snapshots`, payload: { name: '-leading-dash' } },
      { method: 'POST' as const, url: `/v1/vms/${vm.id}/snapshots`, payload: { name: 'x'.repeat(65) } },
      { method: 'POST' as const, url: `/v1/vms/${vm.id}/snapshots`, payload: { label: 'x' } },
      { method: 'POST' as const, url: `/v1/vms/${vm.id}/rollback`, payload: { snapshot_id: 'snap-1' } },
      { method: 'POST' as const, url: `/v1/snapshots/${SNAP_ID}/fork`, payload: { count: 17 } },
      { method: 'POST' as const, url: `/v1/snapshots/${SNAP_ID}/fork`, payload: { count: 0 } },
      { method: 'POST' as const, url: `/v1/snapshots/${SNAP_ID}/fork`, payload: { count: 1, ttl_ms: 86_400_001 } },
      { method: 'GET' as const, url: '/v1/snapshots?vm_id=nope' },
    ];
    for (const request of bad) {
      const r = await app.inject({ ...request, headers: auth });
      expect([request.url, r.statusCode, r.json().error.code]).toEqual([request.url, 400, 'INVALID_ARGUMENT']);
    }
    expect(calls).toEqual([]);
  });

  it('rollback answers the VM, fork 201 {vms}, pause {persist: true} the VM on disk with its snapshot', async () => {
    const { vm, app, calls } = await start((vm) => [record(vm)]);
    const rolled = await app.inject({ method: 'POST', url: `/v1/vms/${vm.id}/rollback`, headers: auth, payload: { snapshot_id: SNAP_ID } });
    expect([rolled.statusCode, rolled.json().id]).toEqual([200, vm.id]);
    const forked = await app.inject({ method: 'POST', url: `/v1/snapshots/${SNAP_ID}/fork`, headers: auth, payload: { count: 2, ttl_ms: 5000 } });
    expect(forked.statusCode).toBe(201);
    expect(forked.json().vms.map((v: { id: string; state: string }) => [v.id, v.state])).toEqual([
      ['vm-000000000000', 'running'],
      ['vm-000000000001', 'running'],
    ]);
    const paused = await app.inject({ method: 'POST', url: `/v1/vms/${vm.id}/pause`, headers: auth, payload: { persist: true } });
    expect(paused.statusCode).toBe(200);
    expect(paused.json()).toMatchObject({ id: vm.id, state: 'paused_to_disk', snapshot: { id: SNAP_ID, files: { memory: null } } });
    expect(calls).toEqual([`rollback ${SNAP_ID}`, `fork ${SNAP_ID} 2 ttl 5000`]);
  });

  it('publishes the snapshot schemas in the OpenAPI document', async () => {
    const { app } = await start();
    const doc = (await app.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
    const files = doc.paths['/v1/snapshots/{id}'].get.responses['200'].content['application/json'].schema.properties.files;
    expect(Object.keys(files.properties)).toEqual(['state', 'scratch', 'memory']);
    expect(Object.keys(doc.paths['/v1/snapshots'].get.responses)).toContain('200');
  });

  it('answers 501 SNAPSHOT_UNSUPPORTED without a live-snapshot service', async () => {
    const vm = fakeVm();
    app = await buildApp(fakeDeps(vm));
    const r = await app.inject({ method: 'GET', url: `/v1/snapshots/${SNAP_ID}`, headers: auth });
    expect([r.statusCode, r.json().error.code]).toEqual([501, 'SNAPSHOT_UNSUPPORTED']);
  });
});
