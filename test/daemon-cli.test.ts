import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, VmRepository } from '../src/store/index.js';
import { assertNothingLeft, qemuProcessesUsing, runTfc, scratchDir, testDataDir, TFC_BIN, writeConfig } from './helpers.js';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Served {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function serve(config: string, env: NodeJS.ProcessEnv): Promise<Served> {
  const child = spawn(process.execPath, [TFC_BIN, '--config', config, 'serve'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const deadline = Date.now() + 120_000;
  while (!/listening on/.test(stderr)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`tfc serve did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, stderr: () => stderr, exited };
}

// The daemon as users run it: a separate `tfc serve` process, the CLI as its client.
describe('tfc serve as a process, with CLI clients', () => {
  const dir = scratchDir();
  const config = writeConfig(dir.path, '[pools.default]\nmin = 1\nmax = 2\ntarget = 1\n');
  let served: Served | undefined;

  afterAll(async () => {
    served?.child.kill('SIGKILL');
    dir.remove();
  });

  it('serves the CLI, survives being killed without orphans, and reconciles on restart', async () => {
    const port = await freePort();
    const env = { TFC_DATA_DIR: testDataDir(), TFC_TOKEN: 'cli-test-token-0123456789', TFC_LISTEN: `127.0.0.1:${port}`, TFC_URL: `http://127.0.0.1:${port}` };
    const tfc = (args: string[]) => runTfc(['--config', config, ...args], { env });
    served = await serve(config, env);
    expect(served.stderr()).toMatch(/golden snapshot for profile minimal/);

    const pools = JSON.parse((await tfc(['pool', 'ls', '--json'])).stdout).pools;
    expect(pools[0]).toMatchObject({ name: 'default', max: 2 });
    const alloc = await tfc(['pool', 'allocate', 'default']);
    expect(alloc.code).toBe(0);
    const id = alloc.stdout.trim();
    expect(id).toMatch(/^vm-[0-9a-f]{12}$/);
    expect(alloc.stderr).toMatch(/allocated .* in [0-9.]+ ms/);
    const exec = await tfc(['vm', 'exec', id, '--', 'sh', '-c', 'echo hello; exit 4']);
    expect(exec).toMatchObject({ code: 4, stdout: 'hello\n' });
    const got = JSON.parse((await tfc(['vm', 'get', id, '--json'])).stdout);
    expect(got).toMatchObject({ id, state: 'running', allocated: true, pool: 'default' });
    const ls = JSON.parse((await tfc(['vm', 'ls', '--json'])).stdout).vms;
    expect(ls.map((v: { id: string }) => v.id)).toContain(id);

    // kill -9 the daemon: its VMMs die with it (PR_SET_PDEATHSIG) ...
    served.child.kill('SIGKILL');
    await served.exited;
    const deadline = Date.now() + 10_000;
    while ((await qemuProcessesUsing(testDataDir())).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await qemuProcessesUsing(testDataDir())).toEqual([]);
    // ... but its run dirs and store rows are left for the next start to reconcile.
    expect(readdirSync(join(testDataDir(), 'run', 'vms')).length).toBeGreaterThan(0);

    served = await serve(config, env);
    expect(served.stderr()).toMatch(/reconciled: [1-9]\d* VMs of a previous run marked stopped/);
    const db = openDatabase(join(testDataDir(), 'tfc.db'));
    try {
      const record = new VmRepository(db).get(id);
      expect(record.state).toBe('stopped');
      expect(new VmRepository(db).transitions(id).at(-1)?.reason).toMatch(/reconciled/);
    } finally {
      db.close();
    }
    expect((await tfc(['vm', 'exec', id, '--', 'true'])).stderr).toMatch(/VM_NOT_FOUND/);

    served.child.kill('SIGTERM');
    expect(await served.exited).toBe(0);
    expect(served.stderr()).toMatch(/stopped/);
    served = undefined;
    expect(existsSync(join(testDataDir(), 'run', 'vms')) ? readdirSync(join(testDataDir(), 'run', 'vms')) : []).toEqual([]);
    await assertNothingLeft(testDataDir());
  });

  it('a client without a daemon gets a clear error', async () => {
    const port = await freePort();
    const r = await runTfc(['pool', 'ls'], { env: { TFC_URL: `http://127.0.0.1:${port}` } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DAEMON_UNAVAILABLE.*tfc serve/);
  });
});
