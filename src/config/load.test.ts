import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TfcError } from '../errors/index.js';
import { defaultConfig, loadConfig, validateConfigFile, type LoadConfigOptions } from './index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tfc-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** loadConfig isolated from the host: empty env, a non-root uid, cwd = the temp dir. */
function load(opts: LoadConfigOptions = {}) {
  return loadConfig({ cwd: dir, uid: 1000, ...opts, env: { HOME: '/home/u', ...opts.env } });
}

/** The TfcError thrown by `fn`. */
function thrown(fn: () => unknown): TfcError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TfcError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

interface Problem {
  key?: string;
  value?: unknown;
  line?: number;
  column?: number;
  env?: string;
  message: string;
}
const problems = (err: TfcError) => (err.details as { errors: Problem[] }).errors;

describe('defaults', () => {
  it('gives the documented defaults when there is no file', () => {
    const { config, file, sources } = load();
    expect(file).toBeNull();
    expect(config).toEqual({
      dataDir: '/home/u/.local/share/tfc',
      logLevel: 'info',
      defaultProfile: 'minimal',
      vmm: {
        defaultDriver: 'qemu',
        stopTimeoutMs: 3000,
        consoleLogMaxBytes: 8 * 1024 * 1024,
        nice: 10,
        qemu: { binary: 'qemu-system-x86_64', accel: 'auto', tcgTbSizeMib: 128, memMerge: false, thp: 'never' },
        firecracker: {
          binary: 'firecracker',
          apiTimeoutMs: 5000,
          logLevel: 'info',
          metricsSink: 'file',
          jailer: {
            enabled: true,
            binary: 'jailer',
            uid: 65534,
            gid: 65534,
            chrootBaseDir: '/srv/jailer',
            cgroupVersion: 2,
            parentCgroup: '',
            cgroups: [],
            resourceLimits: [],
            netns: '',
          },
        },
      },
      images: {
        kernelPackage: 'auto',
        definitions: {
          minimal: { name: 'minimal', kind: 'minimal' },
          python: {
            name: 'python',
            kind: 'debian',
            suite: 'bookworm',
            variant: 'minbase',
            packages: ['python3', 'ca-certificates', 'curl'],
            mirror: 'http://deb.debian.org/debian',
            extraMib: 64,
          },
          node: {
            name: 'node',
            kind: 'debian',
            suite: 'bookworm',
            variant: 'minbase',
            packages: ['nodejs', 'ca-certificates', 'curl'],
            mirror: 'http://deb.debian.org/debian',
            extraMib: 64,
          },
        },
      },
      profiles: {
        minimal: {
          name: 'minimal',
          driver: 'qemu',
          image: 'minimal',
          vcpus: 1,
          memoryMib: 256,
          kernelArgs: '',
          bootTimeoutMs: 120000,
          bootLevel: 'standard',
          network: {
            enabled: false,
            egressAllow: [],
            egressDeny: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10'],
            bandwidthMbit: 0,
          },
          warmup: [],
          diskMib: 0,
          standbyVmms: 1,
        },
        python: {
          name: 'python',
          driver: 'qemu',
          image: 'python',
          vcpus: 1,
          memoryMib: 512,
          kernelArgs: '',
          bootTimeoutMs: 120000,
          bootLevel: 'instant',
          network: {
            enabled: false,
            egressAllow: [],
            egressDeny: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10'],
            bandwidthMbit: 0,
          },
          warmup: ['python3', '-c', 'import json, os, re, sys, subprocess, pathlib'],
          diskMib: 0,
          standbyVmms: 1,
        },
        node: {
          name: 'node',
          driver: 'qemu',
          image: 'node',
          vcpus: 1,
          memoryMib: 512,
          kernelArgs: '',
          bootTimeoutMs: 120000,
          bootLevel: 'instant',
          network: {
            enabled: false,
            egressAllow: [],
            egressDeny: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10'],
            bandwidthMbit: 0,
          },
          warmup: ['node', '-e', "require('fs'); require('child_process')"],
          diskMib: 0,
          standbyVmms: 1,
        },
      },
      pools: {
        default: {
          name: 'default',
          profile: 'minimal',
          min: 1,
          max: 4,
          target: 2,
          mode: 'fresh',
          prewarmState: 'running',
          rewarm: true,
          refillConcurrency: 1,
          strategy: 'first-available',
          strategySeed: 1,
          maxUses: 100,
          maxAgeMs: 3600000,
          healthIntervalMs: 5000,
          allocateTimeoutMs: 10000,
          skipPingWithinMs: 10000,
          leaseMs: 600000,
          maxLeaseMs: 86400000,
        },
      },
      network: { range: '10.200.0.0/16', prefixPerVm: 30, exposedPorts: [], uplink: '', masquerade: true },
      api: { listen: '127.0.0.1:7070', maxExecTimeoutMs: 600000, requestTimeoutMs: 600000, maxUploadBytes: 1073741824, maxDownloadBytes: 1073741824 },
      terraphim: { vmTypes: { 'focal-optimized': 'default', 'bionic-test': 'default' }, defaultVmType: null, historyMaxEntries: 100, historyMaxVms: 1024 },
      security: { dropPrivileges: true, uidRangeStart: 2000000000, uidCount: 65536 },
      alerts: { enabled: true, evalIntervalMs: 1000, rules: {}, webhooks: [] },
    });
    expect(Object.values(sources).every((s) => s.kind === 'default')).toBe(true);
    expect(Object.keys(sources)).toContain('profiles.minimal.memory_mib');
    expect(Object.keys(sources)).toContain('vmm.stop_timeout_ms');
    expect(Object.keys(sources)).not.toContain('vmm.qemu.stop_timeout_ms');
  });

  it('puts data_dir under /var/lib for root and honours an absolute XDG_DATA_HOME', () => {
    expect(load({ uid: 0 }).config.dataDir).toBe('/var/lib/tfc');
    expect(load({ env: { XDG_DATA_HOME: '/xdg' } }).config.dataDir).toBe('/xdg/tfc');
    // The XDG spec says relative values are invalid and must be ignored.
    expect(load({ env: { XDG_DATA_HOME: 'rel' } }).config.dataDir).toBe('/home/u/.local/share/tfc');
  });

  it('defaultConfig needs no file system', () => {
    expect(defaultConfig({ env: { HOME: '/h' }, uid: 5 }).dataDir).toBe('/h/.local/share/tfc');
  });

  it('accepts an empty file', () => {
    write('tfc.toml', '# nothing\n');
    const loaded = load();
    expect(loaded.file).toBe(join(dir, 'tfc.toml'));
    expect(loaded.config.vmm.qemu.accel).toBe('auto');
  });
});

describe('lookup order', () => {
  it('reads ./tfc.toml from the working directory', () => {
    write('tfc.toml', 'log_level = "debug"\n');
    const loaded = load();
    expect(loaded.config.logLevel).toBe('debug');
    expect(loaded.sources.log_level).toEqual({ kind: 'file', file: join(dir, 'tfc.toml'), line: 1 });
  });

  it('prefers $TFC_CONFIG over ./tfc.toml, and an explicit path over both', () => {
    write('tfc.toml', 'log_level = "debug"\n');
    const fromEnv = write('env.toml', 'log_level = "warn"\n');
    const explicit = write('explicit.toml', 'log_level = "error"\n');
    expect(load({ env: { TFC_CONFIG: fromEnv } }).config.logLevel).toBe('warn');
    expect(load({ env: { TFC_CONFIG: fromEnv }, configPath: explicit }).file).toBe(explicit);
    expect(load({ env: { TFC_CONFIG: fromEnv }, configPath: explicit }).config.logLevel).toBe('error');
  });

  it('resolves relative paths against cwd', () => {
    mkdirSync(join(dir, 'sub'));
    write('sub/c.toml', 'log_level = "trace"\n');
    expect(load({ configPath: 'sub/c.toml' }).file).toBe(join(dir, 'sub', 'c.toml'));
    expect(load({ env: { TFC_CONFIG: 'sub/c.toml' } }).config.logLevel).toBe('trace');
  });

  it('fails with CONFIG_NOT_FOUND naming the path and its origin when an explicit file is missing', () => {
    write('tfc.toml', ''); // must not be used as a fallback
    const err = thrown(() => load({ configPath: 'missing.toml' }));
    expect(err.code).toBe('CONFIG_NOT_FOUND');
    expect(err.message).toContain(join(dir, 'missing.toml'));
    expect(err.message).toContain('command line');
    expect(err.details).toEqual({ path: join(dir, 'missing.toml'), from: 'explicit' });
  });

  it('fails with CONFIG_NOT_FOUND when $TFC_CONFIG names a missing file', () => {
    const err = thrown(() => load({ env: { TFC_CONFIG: '/nope/tfc.toml' } }));
    expect(err.code).toBe('CONFIG_NOT_FOUND');
    expect(err.message).toMatch(/\/nope\/tfc\.toml not found \(set by TFC_CONFIG\)/);
    expect(err.details).toEqual({ path: '/nope/tfc.toml', from: 'env' });
  });

  it('reports a directory given as the config file as unreadable', () => {
    mkdirSync(join(dir, 'conf.d'));
    const err = thrown(() => load({ configPath: 'conf.d' }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('cannot read config file');
  });
});

describe('environment overrides', () => {
  it('win over the file and report the variable as source', () => {
    write('tfc.toml', '[vmm.qemu]\naccel = "tcg"\nbinary = "/opt/qemu"\n');
    const loaded = load({
      env: {
        TFC_QEMU_ACCEL: 'kvm',
        TFC_LOG_LEVEL: 'warn',
        FIRECRACKER_BIN: '/usr/local/bin/firecracker',
        TFC_DATA_DIR: '/srv/tfc',
      },
    });
    expect(loaded.config.vmm.qemu.accel).toBe('kvm');
    expect(loaded.config.vmm.qemu.binary).toBe('/opt/qemu');
    expect(loaded.config.logLevel).toBe('warn');
    expect(loaded.config.vmm.firecracker.binary).toBe('/usr/local/bin/firecracker');
    expect(loaded.config.dataDir).toBe('/srv/tfc');
    expect(loaded.sources['vmm.qemu.accel']).toEqual({ kind: 'env', env: 'TFC_QEMU_ACCEL' });
    expect(loaded.sources['vmm.qemu.binary']).toEqual({ kind: 'file', file: join(dir, 'tfc.toml'), line: 3 });
  });

  it('TFC_QEMU_BINARY overrides the qemu binary; empty variables count as unset', () => {
    const loaded = load({ env: { TFC_QEMU_BINARY: '/x/qemu', TFC_LOG_LEVEL: '' } });
    expect(loaded.config.vmm.qemu.binary).toBe('/x/qemu');
    expect(loaded.config.logLevel).toBe('info');
  });

  it('rejects bad values naming the variable', () => {
    const err = thrown(() => load({ env: { TFC_QEMU_ACCEL: 'fast', TFC_LOG_LEVEL: 'loud' } }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('env TFC_QEMU_ACCEL: vmm.qemu.accel = "fast": must be one of "auto", "kvm", "tcg"');
    expect(err.message).toContain('env TFC_LOG_LEVEL: log_level = "loud"');
    expect(problems(err)).toContainEqual({
      key: 'vmm.qemu.accel',
      value: 'fast',
      env: 'TFC_QEMU_ACCEL',
      message: 'must be one of "auto", "kvm", "tcg"',
    });
  });

  it('resolves a relative TFC_DATA_DIR against cwd', () => {
    expect(load({ env: { TFC_DATA_DIR: 'data' } }).config.dataDir).toBe(join(dir, 'data'));
  });
});

describe('data_dir in the file', () => {
  it('is relative to the file and expands ~', () => {
    mkdirSync(join(dir, 'etc'));
    const path = write('etc/tfc.toml', 'data_dir = "state"\n');
    expect(load({ configPath: path }).config.dataDir).toBe(join(dir, 'etc', 'state'));
    write('home.toml', 'data_dir = "~/vms"\n');
    expect(load({ configPath: 'home.toml' }).config.dataDir).toBe('/home/u/vms');
  });
});

describe('vmm.stop_timeout_ms', () => {
  it("times every driver's stop; the deprecated vmm.qemu.stop_timeout_ms still sets it, and the new key wins", () => {
    const path = write('old.toml', '[vmm.qemu]\nstop_timeout_ms = 7000\n');
    const old = load({ configPath: path });
    expect(old.config.vmm.stopTimeoutMs).toBe(7000);
    expect(old.sources['vmm.stop_timeout_ms']).toEqual({ kind: 'file', file: path, line: 2 });
    const both = load({ configPath: write('both.toml', '[vmm]\nstop_timeout_ms = 1500\n[vmm.qemu]\nstop_timeout_ms = 7000\n') });
    expect(both.config.vmm.stopTimeoutMs).toBe(1500);
    expect(load({ configPath: write('new.toml', '[vmm]\nstop_timeout_ms = 0\n') }).config.vmm.stopTimeoutMs).toBe(0);
  });
});

describe('errors', () => {
  /** Loads `text` as ./tfc.toml and returns the single problem it reports. */
  function oneProblem(text: string): { err: TfcError; problem: Problem } {
    write('tfc.toml', text);
    const err = thrown(() => load());
    expect(err.code).toBe('CONFIG_INVALID');
    expect((err.details as { file: string }).file).toBe(join(dir, 'tfc.toml'));
    expect(problems(err)).toHaveLength(1);
    return { err, problem: problems(err)[0] };
  }

  it('bad enum: names key, value, line and the allowed values', () => {
    const { err, problem } = oneProblem('log_level = "info"\n\n[vmm.qemu]\n# why\nbinary = "q"\n\naccel = "fast"\n');
    expect(err.message).toBe(`invalid config ${join(dir, 'tfc.toml')}:\n  line 7: vmm.qemu.accel = "fast": must be one of "auto", "kvm", "tcg"`);
    expect(problem).toEqual({ key: 'vmm.qemu.accel', value: 'fast', line: 7, message: 'must be one of "auto", "kvm", "tcg"' });
  });

  it('unknown key: suggests the nearest known key', () => {
    const { err, problem } = oneProblem('[vmm]\ndefault_driver = "qemu"\n\n[vmm.qemu]\nacel = "kvm"\n');
    expect(problem.key).toBe('vmm.qemu.acel');
    expect(problem.line).toBe(5);
    expect(err.message).toContain('line 5: vmm.qemu.acel = "kvm": unknown key; did you mean "accel"?');
    expect(problem.message).toContain('allowed here: binary, accel, tcg_tb_size_mib, mem_merge, thp, stop_timeout_ms');
  });

  it('unknown key: no suggestion when nothing is close, also for unknown tables', () => {
    // [cluster] exists since issue 13; [fleet] is not a table tfc knows.
    const { problem } = oneProblem('\n[fleet]\nbridge = "br0"\n');
    expect(problem).toMatchObject({ key: 'fleet', line: 2, value: { bridge: 'br0' } });
    expect(problem.message).not.toContain('did you mean');
  });

  it('wrong type', () => {
    const { err, problem } = oneProblem('[vmm.qemu]\nstop_timeout_ms = "3s"\n');
    expect(err.message).toContain('line 2: vmm.qemu.stop_timeout_ms = "3s": must be an integer from 0 to 600000');
    expect(problem.value).toBe('3s');
  });

  it('wrong type for a table', () => {
    const { problem } = oneProblem('vmm = "qemu"\n');
    expect(problem).toEqual({ key: 'vmm', value: 'qemu', line: 1, message: 'must be a table' });
  });

  it('out of range and non-integer numbers', () => {
    expect(oneProblem('[profiles.minimal]\nvcpus = 64\n').problem).toEqual({
      key: 'profiles.minimal.vcpus',
      value: 64,
      line: 2,
      message: 'must be an integer from 1 to 32',
    });
    expect(oneProblem('[profiles.dev]\nmemory_mib = 512.5\n').problem).toMatchObject({ key: 'profiles.dev.memory_mib', line: 2 });
    expect(oneProblem('[profiles.dev]\nboot_timeout_ms = 999\n').problem.message).toBe('must be an integer from 1000 to 600000');
  });

  it('vmm.console_log_max_bytes says which sizes it takes', () => {
    expect(oneProblem('[vmm]\nconsole_log_max_bytes = 1000\n').problem).toMatchObject({
      key: 'vmm.console_log_max_bytes',
      line: 2,
      message: expect.stringMatching(/^must be an integer number of bytes from 65536 \(64 KiB\)/),
    });
  });

  it('kernel_package must be auto or a cloud kernel package', () => {
    expect(load({ configPath: write('ok.toml', '[images]\nkernel_package = "linux-image-6.1.0-28-cloud-amd64"\n') }).config.images.kernelPackage).toBe(
      'linux-image-6.1.0-28-cloud-amd64',
    );
    expect(oneProblem('[images]\nkernel_package = "linux-image-amd64"\n').problem).toMatchObject({
      key: 'images.kernel_package',
      line: 2,
    });
  });

  it('TOML syntax error: line and column from the parser', () => {
    write('tfc.toml', 'log_level = "info"\n[vmm\ndefault_driver = "qemu"\n');
    const err = thrown(() => load());
    expect(err.code).toBe('CONFIG_INVALID');
    const [problem] = problems(err);
    expect(problem.line).toBe(2);
    expect(problem.column).toBeGreaterThan(0);
    expect(problem.message).toMatch(/^TOML syntax error: /);
    expect(err.message).toMatch(new RegExp(`^invalid config ${join(dir, 'tfc.toml')}:\\n  line 2, column \\d+: TOML syntax error`));
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('duplicate keys are syntax errors', () => {
    write('tfc.toml', 'log_level = "info"\nlog_level = "warn"\n');
    expect(problems(thrown(() => load()))[0].line).toBe(2);
  });

  it('bad profile name', () => {
    const { err, problem } = oneProblem('[profiles.Big_VM]\nvcpus = 2\n');
    expect(problem).toMatchObject({ key: 'profiles.Big_VM', line: 1 });
    expect(err.message).toContain('line 1: profiles.Big_VM: invalid profile name "Big_VM": must match ^[a-z][a-z0-9_-]{0,31}$');
  });

  it('default_profile naming no profile lists the available ones', () => {
    const { err, problem } = oneProblem('default_profile = "big"\n[profiles.dev]\n');
    expect(problem).toEqual({
      key: 'default_profile',
      value: 'big',
      line: 1,
      message: 'no profile named "big"; available: minimal, python, node, dev',
    });
    expect(err.message).toContain('line 1: default_profile = "big": no profile named "big"');
  });

  it('reports every problem at once, in line order, env problems last', () => {
    write(
      'tfc.toml',
      [
        'default_profile = "nope"', // 1
        'log_levl = "debug"', // 2
        '[vmm.qemu]', // 3
        'accel = "fast"', // 4
        'stop_timeout_ms = "3s"', // 5
        '[profiles.Dev]', // 6
        'memory_mib = 1.5', // 7
        'imag = "x"', // 8
        '[profiles.ok]', // 9
        'vcpus = 0', // 10
      ].join('\n'),
    );
    const err = thrown(() => load({ env: { TFC_LOG_LEVEL: 'loud' } }));
    expect(problems(err).map((p) => [p.line ?? p.env, p.key])).toEqual([
      [1, 'default_profile'],
      [2, 'log_levl'],
      [4, 'vmm.qemu.accel'],
      [5, 'vmm.qemu.stop_timeout_ms'],
      [6, 'profiles.Dev'],
      [7, 'profiles.Dev.memory_mib'],
      [8, 'profiles.Dev.imag'],
      [10, 'profiles.ok.vcpus'],
      ['TFC_LOG_LEVEL', 'log_level'],
    ]);
    expect(err.message.split('\n')).toHaveLength(10);
    expect(problems(err)[2].message).toBe('must be one of "auto", "kvm", "tcg"');
    expect(err.message).toContain('did you mean "log_level"?');
    expect(err.message).toContain('did you mean "image"?');
  });

  it('keeps details JSON-safe for TOML dates', () => {
    const { err, problem } = oneProblem('[profiles.dev]\nvcpus = 2024-01-01\n');
    expect(problem.value).toBe('2024-01-01');
    expect(err.message).toContain('profiles.dev.vcpus = 2024-01-01: must be an integer');
    expect(JSON.parse(JSON.stringify(err.toJSON()))).toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('finds lines of keys in dotted and inline form', () => {
    expect(oneProblem('vmm.qemu.accel = "x"\n').problem.line).toBe(1);
    expect(oneProblem('\n[vmm]\nqemu = { accel = "x" }\n').problem.line).toBe(3);
  });
});

describe('profiles', () => {
  it('a [profiles.minimal] table overrides only the fields it sets', () => {
    write('tfc.toml', '[profiles.minimal]\nmemory_mib = 512\n');
    const loaded = load();
    expect(loaded.config.profiles.minimal).toMatchObject({ memoryMib: 512, vcpus: 1, image: 'minimal', driver: 'qemu' });
    expect(loaded.sources['profiles.minimal.memory_mib']).toMatchObject({ kind: 'file', line: 2 });
    expect(loaded.sources['profiles.minimal.vcpus']).toEqual({ kind: 'default' });
  });

  it('a new profile gets defaults, with driver following vmm.default_driver', () => {
    write(
      'tfc.toml',
      'default_profile = "fc"\n[vmm]\ndefault_driver = "firecracker"\n[profiles.fc]\nvcpus = 2\nkernel_args = "quiet"\n[profiles.q]\ndriver = "qemu"\n',
    );
    const { config, sources } = load();
    expect(Object.keys(config.profiles)).toEqual(['minimal', 'python', 'node', 'fc', 'q']);
    expect(config.defaultProfile).toBe('fc');
    expect(config.profiles.fc).toEqual({
      name: 'fc',
      driver: 'firecracker',
      image: 'minimal',
      vcpus: 2,
      memoryMib: 256,
      kernelArgs: 'quiet',
      bootTimeoutMs: 120000,
      bootLevel: 'standard',
      network: expect.objectContaining({ enabled: false }),
      warmup: [],
      diskMib: 0,
      standbyVmms: 1,
    });
    expect(config.profiles.q.driver).toBe('qemu');
    // The built-in profile has no fixed driver either.
    expect(config.profiles.minimal.driver).toBe('firecracker');
    expect(sources['profiles.fc.driver']).toEqual(sources['vmm.default_driver']);
    expect(sources['profiles.fc.driver']).toMatchObject({ kind: 'file', line: 3 });
  });
});

describe('pools', () => {
  it('merges pool tables over defaults, following default_profile, and keeps defaults within explicit bounds', () => {
    write('tfc.toml', '[profiles.big]\nmemory_mib = 512\nboot_level = "fast"\n[pools.batch]\nprofile = "big"\nmax = 1\nstrategy = "round-robin"\n');
    const { config, sources } = load();
    expect(Object.keys(config.pools)).toEqual(['default', 'batch']);
    expect(config.pools.batch).toMatchObject({ profile: 'big', min: 1, max: 1, target: 1, strategy: 'round-robin', mode: 'fresh' });
    expect(config.pools.default.profile).toBe('minimal');
    expect(config.profiles.big.bootLevel).toBe('fast');
    expect(sources['pools.batch.max']).toMatchObject({ kind: 'file', line: 6 });
  });

  it('reports every pool problem with its line', () => {
    write('tfc.toml', '[pools.web]\nprofile = "nope"\nmin = 5\nmax = 2\nstrategy = "fastest"\n[api]\nlisten = "localhost"\n');
    expect(() => load()).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(
          /line 2: pools\.web\.profile = "nope": no profile named "nope"[\s\S]*line 3: pools\.web\.min = 5: must not exceed max \(2\)[\s\S]*line 5: pools\.web\.strategy = "fastest": must be one of[\s\S]*line 7: api\.listen = "localhost"/,
        ),
      }),
    );
  });

  it('TFC_LISTEN overrides api.listen', () => {
    expect(load({ env: { TFC_LISTEN: '0.0.0.0:8080' } }).config.api.listen).toBe('0.0.0.0:8080');
  });
});

describe('validateConfigFile', () => {
  it('returns ok for a valid file and ignores the environment', () => {
    vi.stubEnv('TFC_QEMU_ACCEL', 'fast');
    try {
      expect(validateConfigFile(write('a.toml', 'log_level = "warn"\n'))).toEqual({ ok: true });
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('returns the same errors loadConfig would throw', () => {
    const result = validateConfigFile(write('b.toml', '[vmm.qemu]\naccel = "fast"\n'));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('CONFIG_INVALID');
    expect(result.error.message).toContain('line 2: vmm.qemu.accel = "fast"');
  });

  it('reports a missing file and a syntax error without throwing', () => {
    const missing = validateConfigFile(join(dir, 'none.toml'));
    expect(missing.ok === false && missing.error.code).toBe('CONFIG_NOT_FOUND');
    const syntax = validateConfigFile(write('c.toml', 'a = \n'));
    expect(syntax.ok === false && syntax.error.code).toBe('CONFIG_INVALID');
  });
});

describe('misplaced keys', () => {
  it('a profile field directly under [profiles] is explained', () => {
    write('tfc.toml', '[profiles]\nvcpus = 2\n');
    const err = thrown(() => load());
    expect(err.message).toContain('line 2: profiles.vcpus = 2: must be a profile table [profiles.NAME]');
  });
});

describe('[vmm.firecracker] and its jailer table', () => {
  it('reads log level, metrics sink and every jailer key, with their lines', () => {
    write(
      'tfc.toml',
      [
        '[vmm.firecracker]',
        'log_level = "debug"',
        'metrics_sink = "fifo"',
        '[vmm.firecracker.jailer]',
        'enabled = true',
        'binary = "/usr/local/bin/jailer"',
        'uid = 123',
        'gid = 100',
        'chroot_base_dir = "/var/lib/tfc-jail"',
        'cgroup_version = 2',
        'parent_cgroup = "tfc/vms"',
        'cgroups = ["memory.max=536870912", "cpu.max=50000 100000"]',
        'resource_limits = ["no-file=1024"]',
        'netns = "/var/run/netns/tfc"',
      ].join('\n'),
    );
    const { config, sources } = load();
    expect(config.vmm.firecracker).toMatchObject({ logLevel: 'debug', metricsSink: 'fifo' });
    expect(config.vmm.firecracker.jailer).toEqual({
      enabled: true,
      binary: '/usr/local/bin/jailer',
      uid: 123,
      gid: 100,
      chrootBaseDir: '/var/lib/tfc-jail',
      cgroupVersion: 2,
      parentCgroup: 'tfc/vms',
      cgroups: ['memory.max=536870912', 'cpu.max=50000 100000'],
      resourceLimits: ['no-file=1024'],
      netns: '/var/run/netns/tfc',
    });
    expect(sources['vmm.firecracker.jailer.cgroups']).toEqual({ kind: 'file', file: join(dir, 'tfc.toml'), line: 12 });
  });

  it('rejects bad jailer values, naming each key and what is allowed', () => {
    write(
      'tfc.toml',
      [
        '[vmm.firecracker]',
        'metrics_sink = "pipe"',
        '[vmm.firecracker.jailer]',
        'enabled = "yes"',
        'uid = -1',
        'chroot_base_dir = "relative/dir"',
        'cgroup_version = 3',
        'parent_cgroup = "../escape"',
        'cgroups = ["memory.max"]',
        'resource_limits = ["nproc=10"]',
        'netns = "tfc"',
        'chroot = "/x"',
      ].join('\n'),
    );
    const err = thrown(() => load());
    expect(err.code).toBe('CONFIG_INVALID');
    const keys = problems(err).map((p) => p.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        'vmm.firecracker.metrics_sink',
        'vmm.firecracker.jailer.enabled',
        'vmm.firecracker.jailer.uid',
        'vmm.firecracker.jailer.chroot_base_dir',
        'vmm.firecracker.jailer.cgroup_version',
        'vmm.firecracker.jailer.parent_cgroup',
        'vmm.firecracker.jailer.cgroups.0',
        'vmm.firecracker.jailer.resource_limits.0',
        'vmm.firecracker.jailer.netns',
        'vmm.firecracker.jailer.chroot',
      ]),
    );
    expect(err.message).toContain('vmm.firecracker.jailer.enabled = "yes": must be true or false');
    expect(err.message).toContain('must be "FILE=VALUE"');
    expect(err.message).toContain('line 12: vmm.firecracker.jailer.chroot = "/x": unknown key (allowed here: enabled, binary, uid, gid, chroot_base_dir');
    expect(err.message).toContain('line 9: vmm.firecracker.jailer.cgroups.0: must be "FILE=VALUE"');
  });
});
