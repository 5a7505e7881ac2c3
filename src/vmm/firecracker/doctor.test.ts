/**
 * `tfc doctor`'s Firecracker checks with injected host facts (no real
 * /dev/kvm or cgroup needed): each problem names what is wrong and how to
 * fix it; problems are warnings while Firecracker is optional and failures
 * once the config makes it a driver in use.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultConfig, type Config } from '../../config/index.js';
import { firecrackerChecks, type FirecrackerHostFacts } from './doctor.js';

const FAKE = fileURLToPath(new URL('../../../test/fake-firecracker/fake-firecracker.mjs', import.meta.url));
const FAKE_JAILER = fileURLToPath(new URL('../../../test/fake-firecracker/fake-jailer.mjs', import.meta.url));
const goodKvm = { devicePresent: true, deviceUsable: true, pvmLoaded: false };
const unified = 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n';
const hybrid = 'cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n';

function config(edit: (c: Config) => void = () => undefined): Config {
  const c = defaultConfig({ env: { HOME: '/h' }, uid: 1000 });
  c.vmm.firecracker.binary = FAKE;
  c.vmm.firecracker.jailer.binary = FAKE_JAILER; // the jailer is on by default
  edit(c);
  return c;
}

function facts(extra: Partial<FirecrackerHostFacts> = {}): FirecrackerHostFacts {
  return {
    kvm: goodKvm,
    mounts: unified,
    readCgroupFile: () => 'cpuset cpu io memory pids\n',
    isRoot: true,
    env: { ...process.env, FAKE_FC_VERSION: '1.12.0' },
    ...extra,
  };
}

const byName = (checks: Awaited<ReturnType<typeof firecrackerChecks>>, name: string) => checks.find((c) => c.name === name)!;

describe('firecrackerChecks', () => {
  it('reports version, KVM, jailer and cgroup v2 as ok on a ready host', async () => {
    const checks = await firecrackerChecks(config(), facts());
    expect(checks.map((c) => c.name)).toEqual(['firecracker', 'kvm (firecracker)', 'firecracker jailer', 'cgroup v2']);
    expect(checks.every((c) => c.status === 'ok' && c.fix === undefined)).toBe(true);
    expect(byName(checks, 'firecracker').detail).toBe(`${FAKE} v1.12.0`);
    expect(byName(checks, 'cgroup v2').detail).toContain('controllers: cpuset cpu io memory pids');
  });

  it('a missing binary is a warning with the install hint while Firecracker is optional, a failure once a profile uses it', async () => {
    const optional = await firecrackerChecks(
      config((c) => (c.vmm.firecracker.binary = 'no-such-firecracker')),
      facts(),
    );
    expect(byName(optional, 'firecracker')).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('optional'),
      fix: expect.stringContaining('release tarball'),
    });
    const required = await firecrackerChecks(
      config((c) => {
        c.vmm.firecracker.binary = 'no-such-firecracker';
        c.profiles.minimal.driver = 'firecracker';
      }),
      facts(),
    );
    expect(byName(required, 'firecracker').status).toBe('fail');
  });

  it('warns about versions older than 1.8', async () => {
    const checks = await firecrackerChecks(config(), facts({ env: { ...process.env, FAKE_FC_VERSION: '1.7.0' } }));
    expect(byName(checks, 'firecracker')).toMatchObject({ status: 'warn', detail: expect.stringContaining('older than 1.8') });
  });

  it('explains unusable KVM, nested PVM included, with a fix', async () => {
    const pvm = await firecrackerChecks(config(), facts({ kvm: { ...goodKvm, pvmLoaded: true } }));
    expect(byName(pvm, 'kvm (firecracker)')).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('nested PVM'),
      fix: expect.stringContaining('hardware KVM'),
    });
    const denied = await firecrackerChecks(
      config((c) => (c.vmm.defaultDriver = 'firecracker')),
      facts({ kvm: { ...goodKvm, deviceUsable: false } }),
    );
    expect(byName(denied, 'kvm (firecracker)')).toMatchObject({ status: 'fail', fix: expect.stringContaining('kvm') });
  });

  it('checks an enabled jailer: binary, root, same release as Firecracker', async () => {
    const enabled = (c: Config) => {
      c.vmm.firecracker.jailer.enabled = true;
      c.vmm.firecracker.jailer.binary = FAKE_JAILER;
    };
    expect(byName(await firecrackerChecks(config(enabled), facts()), 'firecracker jailer')).toMatchObject({
      status: 'ok',
      detail: expect.stringContaining('v1.12.0; a uid of its own per VM from 2000000000'),
    });
    expect(byName(await firecrackerChecks(config(enabled), facts({ isRoot: false })), 'firecracker jailer')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('root'),
    });
    const missing = await firecrackerChecks(
      config((c) => {
        enabled(c);
        c.vmm.firecracker.jailer.binary = 'no-such-jailer';
      }),
      facts(),
    );
    // Firecracker is optional here: a missing jailer warns; once a profile uses Firecracker it fails.
    expect(byName(missing, 'firecracker jailer')).toMatchObject({ status: 'warn', fix: expect.stringContaining('jailer') });
    const required = await firecrackerChecks(
      config((c) => {
        enabled(c);
        c.vmm.firecracker.jailer.binary = 'no-such-jailer';
        c.vmm.defaultDriver = 'firecracker';
      }),
      facts(),
    );
    expect(byName(required, 'firecracker jailer')).toMatchObject({ status: 'fail', detail: expect.stringContaining('will not start') });
    expect(
      byName(
        await firecrackerChecks(
          config((c) => (c.vmm.firecracker.jailer.enabled = false)),
          facts(),
        ),
        'firecracker jailer',
      ),
    ).toMatchObject({ status: 'warn', detail: expect.stringContaining('not enabled') });
    const shared = config((c) => (c.security.dropPrivileges = false));
    expect(byName(await firecrackerChecks(shared, facts()), 'firecracker jailer').detail).toContain('uid 65534, gid 65534 for every VM');
  });

  it('sees a hybrid cgroup host: cgroup2 without controllers, failing when the jailer needs them', async () => {
    const empty = facts({ mounts: hybrid, readCgroupFile: () => '\n' });
    const unjailed = () => config((c) => (c.vmm.firecracker.jailer.enabled = false));
    expect(byName(await firecrackerChecks(unjailed(), empty), 'cgroup v2')).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('/sys/fs/cgroup/unified has no controllers'),
      fix: expect.stringContaining('systemd.unified_cgroup_hierarchy=1'),
    });
    const needs = config((c) => {
      c.vmm.firecracker.jailer.enabled = true;
      c.vmm.firecracker.jailer.binary = FAKE_JAILER;
      c.vmm.firecracker.jailer.cgroups = ['memory.max=268435456', 'cpu.max=50000 100000'];
    });
    expect(byName(await firecrackerChecks(needs, empty), 'cgroup v2')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('lacks controller(s) memory, cpu'),
    });
    expect(byName(await firecrackerChecks(unjailed(), facts({ mounts: 'proc /proc proc rw 0 0\n' })), 'cgroup v2')).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('no cgroup2'),
    });
  });
});
