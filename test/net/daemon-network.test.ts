import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/process/index.js';
import { assertNothingLeft, scratchDir, testDataDir, TFC_BIN, writeConfig } from '../helpers.js';
import { httpGet, Topology, UPSTREAM_IP, UPSTREAM_PORT } from './topology.js';

const isRoot = process.getuid?.() === 0;

// `tfc serve` with a networked profile, run inside a "host" namespace this
// test creates (its only route leads to a dead-end upstream namespace), and
// driven by the real CLI inside the same namespace.
describe.skipIf(!isRoot)('tfc serve with networking, inside a test host namespace', () => {
  const topo = new Topology();
  const dir = scratchDir();
  let daemon: ChildProcess | undefined;
  let stderr = '';
  const env = { ...process.env, TFC_DATA_DIR: testDataDir(), TFC_TOKEN: 'net-test-token-0123456789', TFC_CONFIG: '' };
  const config = writeConfig(
    dir.path,
    '[profiles.minimal]\nnetwork = true\n[network]\nexposed_ports = [7000]\n[pools.default]\nmin = 1\nmax = 2\ntarget = 1\n',
  );
  const tfc = async (args: string[]) => {
    const r = await runCommand('ip', ['netns', 'exec', topo.hostNs, process.execPath, TFC_BIN, '--config', config, ...args], {
      env,
      allowFailure: true,
      timeoutMs: 60_000,
    });
    return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };

  beforeAll(async () => {
    await topo.create();
    daemon = spawn('ip', ['netns', 'exec', topo.hostNs, process.execPath, TFC_BIN, '--config', config, 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    daemon.stderr!.on('data', (c) => (stderr += c));
    const deadline = Date.now() + 120_000;
    while (!/listening on/.test(stderr)) {
      if (Date.now() > deadline || daemon.exitCode !== null) throw new Error(`tfc serve did not start:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon!.once('exit', r));
    }
    await topo.destroy();
    dir.remove();
    const left = (await runCommand('ip', ['netns', 'list'])).stdout
      .toString()
      .split('\n')
      .filter((l) => l.startsWith('tfc-'));
    expect(left).toEqual([]);
    await assertNothingLeft(testDataDir());
  });

  it('allocates a networked clone that reaches upstream via NAT and serves the host at its address', async () => {
    const alloc = await tfc(['pool', 'allocate', 'default', '--json']);
    expect(alloc.code).toBe(0);
    const vm = JSON.parse(alloc.stdout).vm;
    expect(vm.network).toMatchObject({ guest_ip: '172.16.0.2', host_address: expect.stringMatching(/^10\.200\./) });
    const up = await tfc(['vm', 'exec', vm.id, '--', 'wget', '-q', '-O', '-', `http://${UPSTREAM_IP}:${UPSTREAM_PORT}/`]);
    expect(up.stdout).toMatch(/^upstream /);
    const priv = await tfc(['vm', 'exec', vm.id, '--timeout-ms', '2000', '--', 'wget', '-q', '-O', '-', 'http://10.99.0.1:8080/']);
    expect(priv.code).not.toBe(0);
    await tfc(['vm', 'exec', vm.id, '--', 'sh', '-c', 'mkdir -p /www && echo from-guest > /www/index.html && httpd -p 9000 -h /www']);
    expect((await httpGet(topo.hostNs, vm.network.host_address, 9000)).body).toBe('from-guest');
    expect((await tfc(['vm', 'get', vm.id])).stdout).toMatch(/network: host address 10\.200\.\S+, guest 172\.16\.0\.2/);
    expect((await tfc(['vm', 'rm', vm.id])).code).toBe(0);
  });

  it('stops cleanly: namespaces, TAPs, rules and leases go with the VMs', async () => {
    daemon!.kill('SIGTERM');
    const code = await new Promise((r) => daemon!.once('exit', r));
    expect(code).toBe(0);
    const left = (await runCommand('ip', ['netns', 'list'])).stdout
      .toString()
      .split('\n')
      .filter((l) => l.startsWith('tfc-'));
    expect(left).toEqual([]);
    const links = (await runCommand('ip', ['-n', topo.hostNs, '-o', 'link'])).stdout.toString();
    expect(links).not.toMatch(/tfcv/);
    const tables = (await runCommand('ip', ['netns', 'exec', topo.hostNs, 'nft', 'list', 'tables'])).stdout.toString();
    expect(tables).not.toMatch(/inet tfc/);
    // Forwarding was off in the fresh namespace; the daemon turned it on and back off.
    const forwarding = (await runCommand('ip', ['netns', 'exec', topo.hostNs, 'sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.toString().trim();
    expect(forwarding).toBe('0');
  });
});
