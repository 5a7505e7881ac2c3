import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../api/app.js';
import { EventBus } from '../../events/index.js';
import { FAKE_TOKEN, fakeDeps, fakeVm } from '../../testing/fake-api-deps.js';
import { runCli, startCli } from '../../testing/run-cli.js';
import { describeEvent } from './events.js';

// `tfc events` against the real API app with a real bus: what a user sees for what the daemon publishes.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(5);
  }
};

let app: FastifyInstance;
let bus: EventBus;
let dir: string;
let configPath: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tfc-cli-events-'));
  configPath = join(dir, 'tfc.toml');
  writeFileSync(configPath, `data_dir = "${join(dir, 'data')}"\n`);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  bus = new EventBus();
  app = await buildApp({ ...fakeDeps(fakeVm()), events: bus });
  vi.stubEnv('TFC_URL', await app.listen({ host: '127.0.0.1', port: 0 }));
  vi.stubEnv('TFC_TOKEN', FAKE_TOKEN);
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await app.close();
});

const tfc = (...args: string[]) => ['--config', configPath, 'events', ...args];

describe('tfc events', () => {
  it('prints one line per event as it is published, only the types asked for, and exits after --count', async () => {
    const run = startCli(tfc('--types', 'vm.state,allocation', '--count', '2'));
    await until(() => bus.listenerCount === 1);
    bus.publish('pool', { pool: 'web', ready: 1, booting: 0, allocated: 0, target: 1 });
    bus.publish('vm.state', { vm_id: 'vm-1', from: 'booting', to: 'running' });
    bus.publish('allocation', { pool: 'web', vm_id: 'vm-1', ms: 4.25 });
    const r = await run.done;
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}2 {2}vm\.state {2}vm-1 booting -> running$/);
    expect(lines[1]).toMatch(/ {2}3 {2}allocation {2}pool web: vm-1 in 4\.3 ms$/);
    await until(() => bus.listenerCount === 0);
  });

  it('--json prints the API shape, one object per line; --last-event-id replays from the ring', async () => {
    const published = [
      bus.publish('release', { pool: 'web', vm_id: 'vm-1', reason: 'released (fresh pool)' }),
      bus.publish('vm.failed', { driver: 'qemu', code: 'VMM_EXITED' }),
    ];
    const r = await runCli(tfc('--json', '--last-event-id', '0', '--count', '2'));
    expect(r.code).toBe(0);
    expect(
      r.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(published);
  });

  it('rejects bad options and unknown types with a message naming what is valid', async () => {
    const count = await runCli(tfc('--count', '0'));
    expect(count.code).toBe(1);
    expect(count.stderr).toContain('--count takes a number of events');
    const types = await runCli(tfc('--types', 'vm.state,vm.exploded'));
    expect(types.code).toBe(1);
    expect(types.stderr).toMatch(/INVALID_ARGUMENT.*"vm\.exploded".*valid types: vm\.state, vm\.ready/);
    expect(bus.listenerCount).toBe(0);
  });
});

describe('describeEvent', () => {
  it('says what happened for every type, gap and reset', () => {
    const time = '2026-12-01T00:00:00.000Z';
    const lines = [
      describeEvent({ id: 1, type: 'vm.ready', time, data: { vm_id: 'vm-1', profile: 'minimal', driver: 'qemu', kind: 'restore', ms: 81.46, phases: [] } }),
      describeEvent({ id: 2, type: 'allocation.failed', time, data: { pool: 'web', code: 'POOL_EXHAUSTED', ms: 1000 } }),
      describeEvent({ id: 3, type: 'pool', time, data: { pool: 'web', ready: 1, booting: 2, allocated: 3, target: 4 } }),
      describeEvent({
        id: 4,
        type: 'alert',
        time,
        data: { id: 'a1', rule: 'pool_empty', state: 'firing', labels: {}, value: 1, threshold: 0, summary: 'pool web empty for 30 s', since: time },
      }),
      describeEvent({ type: 'gap', id: 9, missed: 4 }),
      describeEvent({ type: 'reset', id: 2, last_id: 2 }),
    ];
    expect(lines.map((l) => l.trim())).toEqual([
      `${time}  1  vm.ready  vm-1 ready in 81.5 ms (restore, profile minimal, qemu)`,
      `${time}  2  allocation.failed  pool web: POOL_EXHAUSTED after 1000 ms`,
      `${time}  3  pool  pool web: ready 1, booting 2, allocated 3, target 4`,
      `${time}  4  alert  firing pool_empty: pool web empty for 30 s`,
      '9  gap  missed 4 events: the daemon no longer holds them',
      '2  reset  the daemon restarted; continuing after its event 2',
    ]);
  });
});
