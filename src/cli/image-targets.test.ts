import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../config/index.js';
import { dataLayout } from '../store/layout.js';
import { imageTargets } from './image-targets.js';

const root = mkdtempSync(join(tmpdir(), 'tfc-image-targets-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const layout = dataLayout(root);
const config = defaultConfig({ env: { HOME: root }, uid: 1000 });

describe('imageTargets', () => {
  it("defaults to the image of default_profile; --profile picks another profile's", () => {
    expect(imageTargets(config, layout, { names: [] })).toEqual([
      { name: 'minimal', definition: { name: 'minimal', kind: 'minimal' }, reason: 'for profile "minimal"' },
    ]);
    expect(imageTargets(config, layout, { names: [], profile: 'python' })[0]).toMatchObject({ name: 'python', definition: { kind: 'debian' } });
  });

  it('builds named images once each, in order, and --all builds every image of the config', () => {
    expect(imageTargets(config, layout, { names: ['node', 'python', 'node'] }).map((t) => t.name)).toEqual(['node', 'python']);
    expect(imageTargets(config, layout, { names: [], all: true }).map((t) => `${t.name}:${t.definition.kind}`)).toEqual([
      'minimal:minimal',
      'python:debian',
      'node:debian',
    ]);
  });

  it('--from-oci makes an oci definition with an absolute source', () => {
    expect(imageTargets(config, layout, { names: [], fromOci: 'out/app', name: 'app', ref: 'v1', extraMib: '128' }, '/work')).toEqual([
      { name: 'app', definition: { name: 'app', kind: 'oci', source: '/work/out/app', ref: 'v1', extraMib: 128 }, reason: 'from /work/out/app' },
    ]);
  });

  it('rejects bad combinations and values, saying what is wrong and what to do', () => {
    const err = (sel: Parameters<typeof imageTargets>[2]) => {
      try {
        imageTargets(config, layout, sel, '/work');
      } catch (e) {
        return `${(e as { code: string }).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    expect(err({ names: ['python'], all: true })).toBe('INVALID_ARGUMENT: give image names, --profile, --all or --from-oci, not several of them');
    expect(err({ names: [], name: 'x' })).toBe('INVALID_ARGUMENT: --name, --ref and --extra-mib go with --from-oci PATH');
    expect(err({ names: [], fromOci: 'a' })).toContain('--from-oci needs --name NAME');
    expect(err({ names: [], fromOci: 'a', name: 'Bad!' })).toContain('invalid --name "Bad!"');
    expect(err({ names: [], fromOci: 'a', name: 'python' })).toContain('image "python" is defined in the config (debian); pick another --name');
    expect(err({ names: [], fromOci: 'a', name: 'app', extraMib: '1.5' })).toContain('--extra-mib must be an integer from 0 to 1048576');
    expect(err({ names: ['nope'] })).toBe(
      'INVALID_ARGUMENT: unknown image "nope" (images of the config: minimal, python, node); define [images.nope] in tfc.toml or build it with `tfc image build --from-oci PATH --name nope`',
    );
    expect(err({ names: [], profile: 'nope' })).toMatch(/^PROFILE_NOT_FOUND/);
  });
});
