import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../src/config/index.js';
import { startDaemon, type Daemon } from '../src/daemon/index.js';
import { assertNothingLeft, jsonApi, REPO, scratchDir, testDataDir, TFC_BIN, until, writeConfig } from './helpers.js';

// POST /v1/run on a real VM: language bash runs in the default profile
// (the minimal image), from the daemon's pool of that profile, and the VM
// is released afterwards. Also `tfc run` against the daemon (TFC_URL) and
// `tfc vm shell` with piped input.
describe('POST /v1/run and tfc vm shell on a real VM', () => {
  const dir = scratchDir();
  const token = 'test-token-0123456789';
  const auth = { authorization: `Bearer ${token}` };
  let daemon: Daemon | undefined;
  let defaultProfile = '';
  const api = jsonApi(() => daemon!.url, auth);

  beforeAll(async () => {
    const config = writeConfig(dir.path, '[pools.default]\nmin = 1\nmax = 2\ntarget = 1\nallocate_timeout_ms = 120000\n');
    const loaded = loadConfig({ configPath: config, env: { TFC_DATA_DIR: testDataDir() } });
    defaultProfile = loaded.config.defaultProfile;
    daemon = await startDaemon(loaded.config, { listen: '127.0.0.1:0', env: { TFC_TOKEN: token }, logger: pino({ level: 'silent' }) });
    await until('pool ready', async () => (await api('GET', '/v1/pools/default')).json.ready >= 1, 300_000);
  });

  afterAll(async () => {
    await daemon?.close();
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  it('runs bash with stdin and files from the pool, and releases the VM', async () => {
    const r = await api('POST', '/v1/run', {
      language: 'bash',
      code: 'read who; echo "hello $who"; cat input/data.txt; wc -c < blob.bin; echo "$MODE"; echo warn >&2; exit 3',
      stdin: 'guest\n',
      env: { MODE: 'test' },
      files: [
        { path: 'input/data.txt', content: 'line from a file\n' },
        { path: '/tmp/tfc-run/blob.bin', content: Buffer.alloc(3000, 7).toString('base64'), encoding: 'base64' },
      ],
    });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json).toMatchObject({ exit_code: 3, stderr: 'warn\n', timed_out: false, source: 'pool', pool: 'default', profile: defaultProfile });
    expect(r.json.stdout).toMatch(/^hello guest\nline from a file\n\s*3000\ntest\n$/);
    expect(r.json.timings.total_ms).toBeGreaterThan(0);
    // Fresh pool: the VM is gone once the answer is out.
    await until('VM released', async () => (await api('GET', `/v1/vms/${r.json.vm_id}`)).json.state === 'stopped', 60_000);
  });

  it('times out a program and answers timed_out with its output so far', async () => {
    const r = await api('POST', '/v1/run', { language: 'bash', code: 'echo before; sleep 30; echo after', timeout_ms: 1500 });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json).toMatchObject({ timed_out: true, stdout: 'before\n' });
  });

  it('answers 400 for an unknown language, listing the languages', async () => {
    const r = await api('POST', '/v1/run', { language: 'ruby', code: 'puts 1' });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(/python, node, bash/);
  });

  it('tfc run -e talks to the daemon when TFC_URL is set', async () => {
    const r = await tfcWithInput(['run', '--language', 'bash', '-e', 'echo via-daemon; exit 4'], '', { TFC_URL: daemon!.url, TFC_TOKEN: token });
    expect(r.stdout).toBe('via-daemon\n');
    expect(r.code, r.stderr).toBe(4);
  });

  it('tfc vm shell with piped input runs it on a terminal and exits with its code', async () => {
    const alloc = await api('POST', '/v1/pools/default/allocate', {});
    expect(alloc.status).toBe(201);
    const r = await tfcWithInput(['vm', 'shell', alloc.json.vm.id], 'stty size; exit 3\n', { TFC_URL: daemon!.url, TFC_TOKEN: token });
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(/\b24 80\b/);
    // tfc vm exec streams too, and forwards piped stdin.
    const e = await tfcWithInput(['vm', 'exec', alloc.json.vm.id, '--', 'sh', '-c', 'tr a-z A-Z; exit 2'], 'shout\n', {
      TFC_URL: daemon!.url,
      TFC_TOKEN: token,
    });
    expect(e).toMatchObject({ code: 2, stdout: 'SHOUT\n' });
    // Ctrl-C of tfc reaches the guest command: it dies of SIGINT and tfc exits 130, at once.
    const started = Date.now();
    const interrupted = await tfcWithInput(
      ['vm', 'exec', alloc.json.vm.id, '--', 'sh', '-c', 'echo ready; sleep 60'],
      '',
      { TFC_URL: daemon!.url, TFC_TOKEN: token },
      'ready',
    );
    expect(interrupted).toMatchObject({ code: 130, stdout: 'ready\n' });
    expect(Date.now() - started).toBeLessThan(30_000);
    await api('DELETE', `/v1/vms/${alloc.json.vm.id}`);
  });
});

/** The real `tfc` binary with `input` on its stdin (a pipe, not a terminal); SIGINT once stdout shows `interruptAfter`. */
function tfcWithInput(
  args: string[],
  input: string,
  env: NodeJS.ProcessEnv,
  interruptAfter?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TFC_BIN, ...args], {
      cwd: REPO,
      env: { ...process.env, TFC_DATA_DIR: testDataDir(), TFC_CONFIG: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
      // Once the command said it is running: Ctrl-C, as a terminal would send it.
      if (interruptAfter && stdout.includes(interruptAfter)) child.kill('SIGINT');
    });
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}
