import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { afterAll, describe, expect, it } from 'vitest';
import { configDocument, loadConfig, renderConfigShow } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'tfc-show-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'tfc.toml'), ['log_level = "debug"', '', '[profiles.dev]', 'vcpus = 2', 'kernel_args = "console=ttyS0 quiet"'].join('\n'));
const loaded = loadConfig({ cwd: dir, uid: 1000, env: { HOME: '/home/u', TFC_DATA_DIR: '/srv/tfc' } });

describe('renderConfigShow toml', () => {
  const out = renderConfigShow(loaded, 'toml');
  const line = (prefix: string) => out.split('\n').find((l) => l.startsWith(prefix));

  it('annotates every value with its source', () => {
    expect(line('log_level =')).toMatch(/^log_level = "debug"\s+# tfc\.toml:1$/);
    expect(line('data_dir =')).toMatch(/^data_dir = "\/srv\/tfc"\s+# env TFC_DATA_DIR$/);
    expect(line('default_profile =')).toMatch(/# default$/);
    expect(out).toContain(`# effective tfc configuration; file: ${join(dir, 'tfc.toml')}`);
    const valueLines = out.split('\n').filter((l) => l.includes(' = '));
    expect(valueLines.every((l) => / {2}# (default|tfc\.toml:\d+|env [A-Z_]+)$/.test(l))).toBe(true);
  });

  it('prints tables in schema order, then profiles and pools with the merged fields', () => {
    const headers = out.split('\n').filter((l) => l.startsWith('['));
    expect(headers).toEqual([
      '[vmm]',
      '[vmm.qemu]',
      '[vmm.firecracker]',
      '[vmm.firecracker.jailer]',
      '[images]',
      '[images.python]',
      '[images.node]',
      '[network]',
      '[api]',
      '[terraphim]',
      '[terraphim.vm_types]',
      '[profiles.minimal]',
      '[profiles.python]',
      '[profiles.node]',
      '[profiles.dev]',
      '[pools.default]',
    ]);
    const dev = out.slice(out.indexOf('[profiles.dev]'));
    expect(dev).toMatch(/vcpus = 2\s+# tfc\.toml:4/);
    expect(dev).toMatch(/memory_mib = 256\s+# default/);
  });

  it('is valid TOML that parses back to the effective config', () => {
    expect(parse(out)).toEqual(configDocument(loaded.config));
  });

  it('says when no file was used', () => {
    const empty = mkdtempSync(join(dir, 'empty-'));
    const defaults = loadConfig({ cwd: empty, uid: 1000, env: { HOME: '/h' } });
    expect(defaults.file).toBeNull();
    expect(renderConfigShow(defaults, 'toml')).toContain('no config file (built-in defaults)');
  });
});

describe('renderConfigShow json', () => {
  it('has snake_case config, sources and the file', () => {
    const json = JSON.parse(renderConfigShow(loaded, 'json'));
    expect(json.file).toBe(join(dir, 'tfc.toml'));
    expect(json.config.vmm.stop_timeout_ms).toBe(3000);
    expect(json.config.vmm.qemu).not.toHaveProperty('stop_timeout_ms');
    expect(json.config.profiles.dev).toEqual({
      driver: 'qemu',
      image: 'minimal',
      vcpus: 2,
      memory_mib: 256,
      kernel_args: 'console=ttyS0 quiet',
      boot_timeout_ms: 120000,
      boot_level: 'standard',
      network: false,
      egress_allow: [],
      egress_deny: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10'],
      bandwidth_mbit: 0,
      warmup: [],
      disk_mib: 0,
      standby_vmms: 1,
    });
    expect(json.config.images.python).toEqual({
      kind: 'debian',
      suite: 'bookworm',
      variant: 'minbase',
      packages: ['python3', 'ca-certificates', 'curl'],
      mirror: 'http://deb.debian.org/debian',
      extra_mib: 64,
    });
    expect(json.config.profiles.python.warmup).toEqual(['python3', '-c', 'import json, os, re, sys, subprocess, pathlib']);
    expect(json.sources['images.python.packages']).toEqual({ kind: 'default' });
    expect(json.sources.data_dir).toEqual({ kind: 'env', env: 'TFC_DATA_DIR' });
    expect(json.sources['profiles.dev.vcpus']).toEqual({ kind: 'file', file: join(dir, 'tfc.toml'), line: 4 });
    expect(json.sources['vmm.firecracker.api_timeout_ms']).toEqual({ kind: 'default' });
  });
});

describe('renderConfigShow arrays', () => {
  it('renders array values (the jailer cgroups) as TOML arrays that parse back', () => {
    const sub = mkdtempSync(join(dir, 'arrays-'));
    writeFileSync(join(sub, 'tfc.toml'), '[vmm.firecracker.jailer]\ncgroups = ["memory.max=536870912", "cpu.max=50000 100000"]\n');
    const withArrays = loadConfig({ cwd: sub, uid: 1000, env: { HOME: '/h' } });
    const out = renderConfigShow(withArrays, 'toml');
    expect(out).toMatch(/^cgroups = \["memory\.max=536870912", "cpu\.max=50000 100000"\]\s+# tfc\.toml:2$/m);
    expect(out).toMatch(/^resource_limits = \[\]\s+# default$/m);
    expect(parse(out)).toEqual(configDocument(withArrays.config));
  });
});

describe('renderConfigShow images', () => {
  it('prints [images.X] tables with their sources and parses back, a relative oci source made absolute', () => {
    const sub = mkdtempSync(join(dir, 'images-'));
    writeFileSync(join(sub, 'tfc.toml'), '[images.app]\nkind = "oci"\nsource = "layouts/app"\n\n[profiles.app]\nimage = "app"\nwarmup = ["/bin/true"]\n');
    const withImages = loadConfig({ cwd: sub, uid: 1000, env: { HOME: '/h' } });
    const out = renderConfigShow(withImages, 'toml');
    const app = out.slice(out.indexOf('[images.app]'));
    expect(app).toMatch(/^kind = "oci"\s+# tfc\.toml:2$/m);
    expect(app).toContain(`source = ${JSON.stringify(join(sub, 'layouts/app'))}`);
    expect(app).toMatch(/^ref = ""\s+# default$/m);
    expect(out).toMatch(/^warmup = \["\/bin\/true"\]\s+# tfc\.toml:7$/m);
    expect(parse(out)).toEqual(configDocument(withImages.config));
  });
});
