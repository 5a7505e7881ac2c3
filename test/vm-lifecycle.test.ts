import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { dataLayout, openDatabase, VmRepository, type Db } from '../src/store/index.js';
import { VmService, type Vm } from '../src/vm/index.js';
import { createDrivers } from '../src/vmm/index.js';
import { assertNothingLeft, testDataDir } from './helpers.js';

// One real VM, many agent operations against it, then a clean stop.
describe('a running VM (real QEMU, in-process)', () => {
  let db: Db;
  let repo: VmRepository;
  let service: VmService;
  let vm: Vm;

  beforeAll(async () => {
    const dataDir = testDataDir();
    const { config } = loadConfig({ env: { TFC_DATA_DIR: dataDir }, cwd: dataDir });
    const layout = dataLayout(dataDir);
    db = openDatabase(layout.database);
    repo = new VmRepository(db);
    service = new VmService({ layout, repo, drivers: createDrivers(config), stopTimeoutMs: 3000 });
    vm = await service.create({ profile: config.profiles.minimal });
  });

  afterAll(async () => {
    await service?.stopAll('test finished');
    db?.close();
    await assertNothingLeft(testDataDir());
  });

  it('is running, with boot phases and the agent hello recorded', () => {
    expect(vm.state).toBe('running');
    expect(vm.hello?.protocol).toBe(1);
    expect(vm.hello?.kernelRelease).toMatch(/cloud-amd64/);
    expect(repo.get(vm.id)).toMatchObject({ state: 'running', driver: 'qemu', profile: 'minimal' });
    expect(repo.phases(vm.id, 'boot').map((p) => p.name)).toEqual(['prepare', 'spawn_vmm', 'configure', 'start', 'kernel', 'agent_ready']);
  });

  it('returns binary and large output intact, and flags truncation', async () => {
    const bin = await vm.exec({ argv: ['sh', '-c', 'printf "\\000\\001\\377abc"'] });
    expect([...bin.stdout]).toEqual([0, 1, 255, 97, 98, 99]);
    const big = await vm.exec({ argv: ['sh', '-c', 'head -c 3000000 /dev/zero | tr "\\000" x'], maxOutputBytes: 4 * 1024 * 1024 });
    expect(big.stdout.length).toBe(3000000);
    expect(big.stdout.every((b) => b === 0x78)).toBe(true);
    expect(big.stdoutTruncated).toBe(false);
    const capped = await vm.exec({ argv: ['sh', '-c', 'head -c 5000 /dev/zero'], maxOutputBytes: 1000 });
    expect(capped.stdout.length).toBe(1000);
    expect(capped.stdoutTruncated).toBe(true);
  });

  it('passes stdin, env and cwd', async () => {
    const r = await vm.exec({ argv: ['sh', '-c', 'cat; echo "$GREETING"; pwd'], stdin: 'from-stdin\n', env: { GREETING: 'hello' }, cwd: '/tmp' });
    expect(r.stdout.toString()).toBe('from-stdin\nhello\n/tmp\n');
  });

  it('writes and reads files, binary-safe', async () => {
    const data = Buffer.from([0, 1, 2, 250, 251, 252, 10, 13]);
    await vm.writeFile('/tmp/dir/a.bin', data, { mkdirs: true });
    const back = await vm.readFile('/tmp/dir/a.bin');
    expect(Buffer.compare(back.data, data)).toBe(0);
    const listed = await vm.exec({ argv: ['ls', '-l', '/tmp/dir/a.bin'] });
    expect(listed.stdout.toString()).toMatch(/ 8 /);
    await expect(vm.readFile('/no/such/file')).rejects.toMatchObject({ code: 'AGENT_ERROR' });
  });

  it('keeps serving after the host disconnects and reconnects (what clones rely on)', async () => {
    for (let i = 0; i < 3; i++) {
      const hello = await vm.reconnectAgent();
      expect(hello.protocol).toBe(1);
      const r = await vm.exec({ argv: ['echo', `round-${i}`] });
      expect(r.stdout.toString()).toBe(`round-${i}\n`);
    }
  });

  it('sets the guest clock and accepts entropy', async () => {
    const target = Date.UTC(2030, 0, 2, 3, 4, 5);
    await vm.agent.setClock(target);
    const date = await vm.exec({ argv: ['date', '-u', '+%Y-%m-%dT%H:%M'] });
    expect(date.stdout.toString().trim()).toBe('2030-01-02T03:04');
    const added = await vm.agent.addEntropy(Buffer.alloc(64, 9));
    expect(added.bytesAdded).toBe(64);
  });

  it('pauses and resumes; exec while paused is INVALID_STATE naming the state', async () => {
    await vm.pause();
    expect(vm.state).toBe('paused');
    await expect(vm.exec({ argv: ['true'] })).rejects.toMatchObject({ code: 'INVALID_STATE', message: expect.stringContaining('it is paused') });
    await vm.resume();
    const r = await vm.exec({ argv: ['echo', 'back'] });
    expect(r.stdout.toString()).toBe('back\n');
  });

  it('stops cleanly and records the transitions', async () => {
    await service.destroy(vm);
    expect(vm.state).toBe('stopped');
    const states = repo.transitions(vm.id).map((t) => t.to);
    expect(states).toEqual(['creating', 'booting', 'running', 'paused', 'running', 'stopping', 'stopped']);
    await expect(vm.exec({ argv: ['true'] })).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await assertNothingLeft(testDataDir());
  });

  it('detects a VMM that dies under a running VM, marks it failed and releases everything', async () => {
    const victim = await service.create({ profile: loadConfig({ env: { TFC_DATA_DIR: testDataDir() } }).config.profiles.minimal });
    process.kill(victim.pid!, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while (victim.state !== 'failed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(victim.state).toBe('failed');
    expect(repo.get(victim.id)).toMatchObject({ state: 'failed', errorCode: 'VMM_EXITED' });
    await expect(victim.exec({ argv: ['true'] })).rejects.toMatchObject({ code: 'INVALID_STATE', message: expect.stringContaining('it is failed') });
    await service.destroy(victim);
    // A VM that died stays recorded as failed (with its reason); destroying it only releases what it held.
    expect(victim.state).toBe('failed');
    expect(repo.get(victim.id)).toMatchObject({ state: 'failed', errorCode: 'VMM_EXITED' });
    await assertNothingLeft(testDataDir());
  });
});
