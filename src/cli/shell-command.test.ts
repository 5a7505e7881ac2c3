import type { FastifyInstance } from 'fastify';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { canRunFakeVms, compileFakeGuest, openFakeRuntime, type FakeRuntime } from '../testing/fake-runtime.js';
import { listenFakeVmApi } from '../testing/fake-vm-api.js';
import type { Vm } from '../vm/index.js';
import { ApiClient } from './api-client.js';
import { runShell, shellArgv, streamExec } from './commands/shell.js';

// `tfc vm shell` and streamed `tfc vm exec` against a real API whose VM is
// the fake driver's (the real agent on this host): piped input reaches the
// process, output reaches stdout, and the exit code is the process's.
const TOKEN = 'shell-test-token-01234567';

if (!canRunFakeVms) console.warn('shell command tests skipped: gcc is not installed');

describe.skipIf(!canRunFakeVms)('tfc vm shell / exec streaming (fake driver)', () => {
  let guest: Awaited<ReturnType<typeof compileFakeGuest>>;
  let rt: FakeRuntime;
  let vm: Vm;
  let app: FastifyInstance;
  let client: ApiClient;
  let stdout: Buffer[] = [];
  let stderr = '';

  beforeAll(async () => {
    guest = await compileFakeGuest();
    rt = openFakeRuntime(guest.agentBinary);
    let base: string;
    ({ vm, app, base } = await listenFakeVmApi(rt, TOKEN));
    client = new ApiClient(base, TOKEN);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await rt?.close();
    guest?.remove();
  });

  const capture = () => {
    stdout = [];
    stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation(((c: string | Uint8Array) => (stdout.push(Buffer.from(c)), true)) as typeof process.stdout.write);
    vi.spyOn(process.stderr, 'write').mockImplementation(
      ((c: string | Uint8Array) => ((stderr += Buffer.from(c).toString()), true)) as typeof process.stderr.write,
    );
  };
  afterEach(() => vi.restoreAllMocks());

  it('a shell with piped input runs it on a terminal and exits with its code', async () => {
    const input = new PassThrough();
    input.end('stty size; exit 3\n');
    capture();
    const code = await runShell(client, vm.id, ['sh'], input);
    const out = Buffer.concat(stdout).toString();
    vi.restoreAllMocks();
    expect(code, out + stderr).toBe(3);
    // Not a terminal here: the default size.
    expect(out).toMatch(/\b24 80\b/);
  });

  it('a shell whose input ends gets end-of-file (Ctrl-D) and exits 0', async () => {
    const input = new PassThrough();
    input.end('echo still-here\n');
    capture();
    const code = await runShell(client, vm.id, ['sh'], input);
    const out = Buffer.concat(stdout).toString();
    vi.restoreAllMocks();
    expect(code, out + stderr).toBe(0);
    expect(out).toMatch(/still-here/);
  });

  it('streamed exec forwards piped stdin with eof and writes stdout and stderr apart', async () => {
    const input = new PassThrough();
    capture();
    const running = streamExec(client, vm.id, ['sh', '-c', 'tr a-z A-Z; echo done >&2; exit 5'], 30_000, input);
    input.write('hello ');
    input.end('world\n');
    const code = await running;
    const out = Buffer.concat(stdout).toString();
    vi.restoreAllMocks();
    expect(code).toBe(5);
    expect(out).toBe('HELLO WORLD\n');
    expect(stderr).toBe('done\n');
  });

  it('--cmd splits on spaces; the default prefers bash', () => {
    expect(shellArgv('python3 -i')).toEqual(['python3', '-i']);
    expect(shellArgv(undefined).join(' ')).toMatch(/bash -l/);
    expect(() => shellArgv('  ')).toThrow(/--cmd needs a program/);
  });
});
