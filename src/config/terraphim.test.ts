import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TfcError } from '../errors/index.js';
import { BUILTIN_VM_TYPES, configDocument, loadConfig, renderConfigShow, validateConfigFile } from './index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tfc-config-terraphim-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function load(text: string) {
  writeFileSync(join(dir, 'tfc.toml'), text);
  return loadConfig({ cwd: dir, uid: 1000, env: { HOME: '/home/u' } });
}

/** The messages of the CONFIG_INVALID error loading `text` throws. */
function problems(text: string): Array<{ key?: string; line?: number; message: string }> {
  try {
    load(text);
  } catch (err) {
    if (err instanceof TfcError && err.code === 'CONFIG_INVALID')
      return (err.details as { errors: Array<{ key?: string; line?: number; message: string }> }).errors;
    throw err;
  }
  throw new Error('expected CONFIG_INVALID');
}

const POOLS = ['[profiles.big]', 'memory_mib = 512', '[pools.batch]', 'profile = "big"', '[pools.py]', 'profile = "python"'].join('\n');

describe('[terraphim]', () => {
  it('defaults: the built-in vm_type aliases go to the pool "default", no default_vm_type, the history bounds', () => {
    const { config, sources } = loadConfig({ cwd: dir, uid: 1000, env: { HOME: '/home/u' } });
    expect(config.terraphim).toEqual({
      vmTypes: { 'focal-optimized': 'default', 'bionic-test': 'default' },
      defaultVmType: null,
      historyMaxEntries: 100,
      historyMaxVms: 1024,
    });
    expect(BUILTIN_VM_TYPES['focal-optimized']).toBe('default');
    expect(sources['terraphim.vm_types.focal-optimized']).toEqual({ kind: 'default' });
    expect(sources['terraphim.history_max_entries']).toEqual({ kind: 'default' });
    expect(Object.keys(sources)).not.toContain('terraphim.default_vm_type');
  });

  it('reads aliases (to a pool, to a profile a pool serves, remapping a built-in), default_vm_type and the bounds, with their lines', () => {
    const { config, sources } = load(
      [
        POOLS,
        '[terraphim]',
        'default_vm_type = "agents"',
        'history_max_entries = 20',
        'history_max_vms = 64',
        '[terraphim.vm_types]',
        'agents = "batch"',
        '"ubuntu-22.04" = "python"',
        'focal-optimized = "py"',
        '',
      ].join('\n'),
    );
    expect(config.terraphim).toEqual({
      vmTypes: { 'focal-optimized': 'py', 'bionic-test': 'default', agents: 'batch', 'ubuntu-22.04': 'python' },
      defaultVmType: 'agents',
      historyMaxEntries: 20,
      historyMaxVms: 64,
    });
    expect(sources['terraphim.default_vm_type']).toMatchObject({ kind: 'file', line: 8 });
    expect(sources['terraphim.vm_types.agents']).toMatchObject({ kind: 'file', line: 12 });
    expect(sources['terraphim.vm_types.focal-optimized']).toMatchObject({ kind: 'file', line: 14 });
    expect(sources['terraphim.vm_types.bionic-test']).toEqual({ kind: 'default' });
  });

  it('accepts default_vm_type naming a built-in alias, a pool or a profile a pool serves', () => {
    expect(load('[terraphim]\ndefault_vm_type = "focal-optimized"\n').config.terraphim.defaultVmType).toBe('focal-optimized');
    expect(load(`${POOLS}\n[terraphim]\ndefault_vm_type = "batch"\n`).config.terraphim.defaultVmType).toBe('batch');
    expect(load(`${POOLS}\n[terraphim]\ndefault_vm_type = "big"\n`).config.terraphim.defaultVmType).toBe('big');
    // The built-in pool serves default_profile.
    expect(load('default_profile = "node"\n[terraphim.vm_types]\njs = "node"\n').config.terraphim.vmTypes.js).toBe('node');
  });

  it('an alias reaching no pool is an error naming the alias and the valid names', () => {
    const [p] = problems(`${POOLS}\n[terraphim.vm_types]\nfocal = "jammy"\n`);
    expect(p).toMatchObject({ key: 'terraphim.vm_types.focal', line: 8 });
    expect(p!.message).toBe(
      'vm_type alias "focal" reaches no pool: no pool or profile is named "jammy" (pools: default, batch, py; profiles served by a pool: minimal, big, python)',
    );
  });

  it('an alias naming a profile no pool serves says how to fix it', () => {
    const [p] = problems('[terraphim.vm_types]\njs = "node"\n');
    expect(p!.key).toBe('terraphim.vm_types.js');
    expect(p!.message).toContain('vm_type alias "js" reaches no pool: profile "node" is served by no pool: add one ([pools.NAME] with profile = "node")');
  });

  it('default_vm_type reaching no pool lists the aliases too', () => {
    const [p] = problems('[terraphim]\ndefault_vm_type = "jammy"\n[terraphim.vm_types]\nx = "default"\n');
    expect(p).toMatchObject({ key: 'terraphim.default_vm_type', line: 2 });
    expect(p!.message).toContain('no pool or profile is named "jammy"');
    expect(p!.message).toContain('or name a vm_type alias (focal-optimized, bionic-test, x)');
  });

  it('unknown keys get a did-you-mean; bad types, names and ranges are reported with their lines', () => {
    const found = problems(
      [
        '[terraphim]',
        'history_max_entrys = 5',
        'history_max_vms = 0',
        'default_vm_type = 3',
        '[terraphim.vm_types]',
        '"bad name" = "default"',
        'num = 7',
        '',
      ].join('\n'),
    );
    const byKey = Object.fromEntries(found.map((p) => [p.key, p]));
    expect(byKey['terraphim.history_max_entrys']!.message).toMatch(
      /^unknown key; did you mean "history_max_entries"\? \(allowed here: vm_types, default_vm_type,/,
    );
    expect(byKey['terraphim.history_max_vms']).toMatchObject({ line: 3, message: 'must be an integer from 1 to 4096' });
    expect(byKey['terraphim.default_vm_type']!.message).toMatch(/^must be a string naming a vm_type/);
    expect(byKey['terraphim.vm_types."bad name"']!.message).toMatch(/^invalid vm_type alias "bad name": must match/);
    expect(byKey['terraphim.vm_types.num']).toMatchObject({ line: 7, message: expect.stringMatching(/^must be a string naming a pool or a profile/) });
    expect(problems('[terraphim]\nhistory_max_entries = 1001\n')[0]!.message).toBe('must be an integer from 1 to 1000');
    expect(problems('[terraphim]\nvm_types = "x"\n')[0]!.message).toMatch(/^must be a table of vm_type aliases/);
  });

  it('validateConfigFile reports the same problems', () => {
    const path = join(dir, 'v.toml');
    writeFileSync(path, '[terraphim.vm_types]\nfocal = "jammy"\n');
    const r = validateConfigFile(path);
    expect(r.ok === false && r.error.message).toContain('line 2: terraphim.vm_types.focal = "jammy": vm_type alias "focal" reaches no pool');
  });

  it('tfc config show prints [terraphim] and [terraphim.vm_types] with sources, leaving out an unset default_vm_type', () => {
    const loaded = load(`${POOLS}\n[terraphim]\nhistory_max_vms = 8\n[terraphim.vm_types]\n"ubuntu-22.04" = "batch"\n`);
    const out = renderConfigShow(loaded, 'toml');
    expect(parse(out)).toEqual(configDocument(loaded.config));
    const section = out.slice(out.indexOf('[terraphim]'), out.indexOf('[profiles.'));
    expect(section).not.toContain('default_vm_type');
    expect(section).toMatch(/history_max_vms = 8\s+# tfc\.toml:8/);
    expect(section).toMatch(/history_max_entries = 100\s+# default/);
    expect(section).toMatch(/"ubuntu-22\.04" = "batch"\s+# tfc\.toml:10/);
    expect(section).toMatch(/focal-optimized = "default"\s+# default/);
    const withDefault = load('[terraphim]\ndefault_vm_type = "bionic-test"\n');
    expect(configDocument(withDefault.config).terraphim).toMatchObject({ default_vm_type: 'bionic-test' });
  });
});
