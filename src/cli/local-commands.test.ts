import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { dataLayout, type DataLayout } from '../store/layout.js';
import { writeFakeImage, writeFakeSnapshot } from '../testing/data-dir-fixtures.js';
import { runCli } from '../testing/run-cli.js';
import { formatChecks } from './commands/doctor.js';

// Commands that work without a daemon, run through the real entry point
// against a throw-away data dir: what they print and how they exit.

let dir: string;
let configPath: string;
let layout: DataLayout;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tfc-cli-local-'));
  layout = dataLayout(join(dir, 'data'));
  configPath = join(dir, 'tfc.toml');
  writeFileSync(configPath, `data_dir = "${layout.root}"\n`);
  vi.stubEnv('TFC_DATA_DIR', '');
  vi.stubEnv('TFC_CONFIG', '');
});

afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

const tfc = (...args: string[]) => runCli(['--config', configPath, ...args]);

describe('tfc basics', () => {
  it('--version prints the version and exits 0', async () => {
    const r = await runCli(['--version']);
    expect(r).toMatchObject({ code: 0 });
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('--help lists the nouns and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const noun of ['doctor', 'image', 'config', 'snapshot', 'serve', 'vm', 'pool']) expect(r.stdout).toContain(noun);
  });

  it('an unknown command is a usage error: exit 2 with a message', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'frobnicate'/);
  });

  it('a config file that does not exist is reported with its path and exit 1', async () => {
    const r = await runCli(['--config', join(dir, 'missing.toml'), 'config', 'show']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tfc: error CONFIG_NOT_FOUND: .*missing\.toml/);
  });
});

describe('tfc vm run: bad input is refused before a VM starts', () => {
  it('a bad --vcpus is a usage error naming the option and value', async () => {
    const r = await tfc('vm', 'run', '--vcpus', 'two', '--', 'true');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--vcpus must be a positive integer, got "two"');
    expect(existsSync(layout.database)).toBe(false);
  });

  it('a bad --driver exits 2 without starting anything', async () => {
    const r = await tfc('vm', 'run', '--driver', 'xen', '--', 'true');
    expect(r.code).toBe(2);
    expect(existsSync(layout.database)).toBe(false);
  });

  it('a bad --driver says why', async () => {
    const r = await tfc('vm', 'run', '--driver', 'xen', '--', 'true');
    expect(r.stderr).toContain('--driver must be qemu or firecracker, got "xen"');
  });

  it("--vcpus 0 and --memory-mib 0 are refused, not taken as the profile's value", async () => {
    for (const flag of ['--vcpus', '--memory-mib']) {
      const r = await tfc('vm', 'run', flag, '0', '--', 'true');
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${flag} must be a positive integer, got "0"`);
    }
    expect(existsSync(layout.database)).toBe(false);
  });

  it('an unknown profile is refused with the ones that exist', async () => {
    const r = await tfc('vm', 'run', '--profile', 'nope', '--', 'true');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('tfc: error PROFILE_NOT_FOUND: profile "nope" not found; available: minimal, python, node (or define [profiles.nope] in tfc.toml)\n');
  });
});

describe('tfc config', () => {
  it('validate accepts a good file', async () => {
    const r = await runCli(['config', 'validate', configPath]);
    expect(r).toMatchObject({ code: 0, stdout: `${configPath}: valid\n` });
  });

  it('validate prints each problem with its line and exits 1', async () => {
    const bad = join(dir, 'bad.toml');
    writeFileSync(bad, 'data_dir = "/x"\nlog_levle = "debug"\n');
    const r = await runCli(['config', 'validate', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('log_levle');
    expect(r.stderr).toContain('log_level');
    expect(r.stderr).toMatch(/line 2|:2/);
  });

  it('show prints the effective config saying where data_dir came from', async () => {
    const r = await tfc('config', 'show');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`data_dir = "${layout.root}"`);
    expect(r.stdout).toContain(configPath);
  });

  it('show --json prints JSON with the data dir', async () => {
    const r = await tfc('config', 'show', '--json');
    expect(r.code).toBe(0);
    expect(JSON.stringify(JSON.parse(r.stdout))).toContain(layout.root);
  });
});

describe('tfc image ls', () => {
  it('says how to build one when none is built', async () => {
    const r = await tfc('image', 'ls');
    expect(r).toMatchObject({ code: 0, stdout: 'no images built; run `tfc image build`\n' });
  });

  it('lists built images newest first, marking the current one, with sizes in MiB', async () => {
    writeFakeImage(layout, { key: '1'.repeat(64), createdAt: '2026-11-01T00:00:00.000Z', current: false });
    writeFakeImage(layout, { key: '2'.repeat(64), createdAt: '2026-11-02T00:00:00.000Z' });
    const r = await tfc('image', 'ls');
    expect(r.code).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => l.includes('minimal'));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain('2026-11-02');
    expect(rows[0]).toMatch(/2\.0.*0\.5.*yes/);
    expect(rows[1]).toContain('2026-11-01');
    expect(rows[1]).not.toContain('yes');
  });

  it('--json prints each manifest with current and dir', async () => {
    const m = writeFakeImage(layout);
    const r = await tfc('image', 'ls', '--json');
    const list = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(list).toEqual([expect.objectContaining({ current: true, name: 'minimal', digest: m.digest })]);
    expect(String(list[0].dir)).toContain(layout.images);
  });

  it('skips an incomplete image (truncated kernel): it will be rebuilt', async () => {
    writeFakeImage(layout);
    writeFileSync(join(layout.images, `minimal-${'a'.repeat(16)}`, 'vmlinux'), 'short');
    const r = await tfc('image', 'ls');
    expect(r.stdout).toBe('no images built; run `tfc image build`\n');
  });
});

describe('tfc snapshot ls / rm', () => {
  it('says how to create one when none exists', async () => {
    const r = await tfc('snapshot', 'ls');
    expect(r).toMatchObject({ code: 0, stdout: 'no snapshots; create one with `tfc snapshot create`\n' });
  });

  it('lists snapshots and marks those of a rebuilt image stale', async () => {
    const image = writeFakeImage(layout);
    writeFakeSnapshot(layout, { key: 'f00d'.repeat(16), imageDigest: image.digest, createdAt: '2026-11-30T12:00:00.000Z' });
    writeFakeSnapshot(layout, { profile: 'old', key: 'beef'.repeat(16), imageDigest: 'not-the-current-digest', createdAt: '2026-11-29T12:00:00.000Z' });
    const r = await tfc('snapshot', 'ls');
    expect(r.code).toBe(0);
    const fresh = r.stdout.split('\n').find((l) => l.includes('f00df00d'));
    const stale = r.stdout.split('\n').find((l) => l.includes('beefbeef'));
    expect(fresh).toMatch(/default.*qemu 7\.2\.0.*1\.0.*4/);
    expect(fresh).not.toContain('stale');
    expect(stale).toContain('yes (image rebuilt)');
    const json = JSON.parse((await tfc('snapshot', 'ls', '--json')).stdout) as Array<{ key: string; stale: boolean }>;
    expect(json.map((s) => [s.key.slice(0, 4), s.stale])).toEqual([
      ['f00d', false],
      ['beef', true],
    ]);
  });

  it('rm by key prefix removes that snapshot only and says what it removed', async () => {
    const image = writeFakeImage(layout);
    writeFakeSnapshot(layout, { key: 'f00d'.repeat(16), imageDigest: image.digest });
    writeFakeSnapshot(layout, { profile: 'other', key: 'beef'.repeat(16), imageDigest: image.digest });
    const r = await tfc('snapshot', 'rm', 'f00df0');
    expect(r).toMatchObject({ code: 0, stdout: `removed ${'f00d'.repeat(4)} (default)\n` });
    expect(existsSync(join(layout.root, 'snapshots', `default-${'f00d'.repeat(4)}`))).toBe(false);
    expect(existsSync(join(layout.root, 'snapshots', `other-${'beef'.repeat(4)}`))).toBe(true);
  });

  it('rm by profile name --json prints the removed manifests', async () => {
    const image = writeFakeImage(layout);
    writeFakeSnapshot(layout, { profile: 'other', key: 'beef'.repeat(16), imageDigest: image.digest });
    const r = await tfc('snapshot', 'rm', 'other', '--json');
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ profile: 'other', key: 'beef'.repeat(16) })]);
  });

  it('rm of something that matches nothing, or a too-short prefix, fails with the fix', async () => {
    const none = await tfc('snapshot', 'rm', 'nothing-here');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/SNAPSHOT_NOT_FOUND: no snapshot matches "nothing-here"; list them with `tfc snapshot ls`/);
    const short = await tfc('snapshot', 'rm', 'ab');
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/at least 4 characters/);
  });
});

describe('tfc doctor', () => {
  it('reports a missing image as a failure with its fix, and exits 1', async () => {
    const r = await tfc('doctor', '--json');
    const report = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; fix?: string }> };
    expect(r.code).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.checks).toContainEqual({
      name: 'image minimal',
      status: 'fail',
      detail: 'not built (profile minimal cannot start VMs until it is)',
      fix: 'tfc image build minimal',
    });
    // Images no pool or default profile uses only warn.
    expect(report.checks).toContainEqual({
      name: 'image python',
      status: 'warn',
      detail: 'not built (profile python cannot start VMs until it is)',
      fix: 'tfc image build python',
    });
    const names = report.checks.map((c) => c.name);
    for (const n of ['qemu', 'tool busybox', 'tool cpio', 'disk']) expect(names).toContain(n);
    // Every check that is not ok says how to fix it.
    for (const c of report.checks) if (c.status !== 'ok') expect(c.fix, c.name).toBeTruthy();
  });

  it('a built image passes its check, shown with digest and kernel', async () => {
    const m = writeFakeImage(layout);
    const r = await tfc('doctor');
    expect(r.stdout).toMatch(new RegExp(`\\[ok\\]\\s+image minimal\\s+${m.digest.slice(0, 16)} kernel ${m.kernel.release.replace(/\./g, '\\.')}`));
  });

  it('formats one line per check with the fix indented under it', () => {
    const text = formatChecks([
      { name: 'qemu', status: 'ok', detail: '/usr/bin/qemu' },
      { name: 'tool lz4', status: 'fail', detail: 'not found', fix: 'apt-get install lz4' },
    ]);
    expect(text).toBe(['[ok]   qemu      /usr/bin/qemu', '[fail] tool lz4  not found', `${' '.repeat(17)}fix: apt-get install lz4`, ''].join('\n'));
  });
});
