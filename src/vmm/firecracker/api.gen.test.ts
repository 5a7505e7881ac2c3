/**
 * api.gen.ts must be exactly what the generator makes from the shared spec:
 * this is how CI fails when someone changes the spec or the generator and
 * forgets `npm run generate:firecracker`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FIRECRACKER_API_VERSION, FIRECRACKER_OPERATIONS } from './api.gen.js';
import { loadFirecrackerSpec } from './spec.js';

interface Generator {
  generateFirecrackerTypes(specText: string): string;
  DEFAULT_SPEC_PATH: string;
}

const SCRIPT = fileURLToPath(new URL('../../../scripts/generate-firecracker-types.mjs', import.meta.url));
const GENERATED = fileURLToPath(new URL('./api.gen.ts', import.meta.url));

async function loadGenerator(): Promise<Generator> {
  return (await import(pathToFileURL(SCRIPT).href)) as Generator;
}

describe('api.gen.ts', () => {
  it('is up to date with the spec and the generator', async () => {
    const gen = await loadGenerator();
    const expected = gen.generateFirecrackerTypes(readFileSync(gen.DEFAULT_SPEC_PATH, 'utf8'));
    const actual = readFileSync(GENERATED, 'utf8');
    if (actual !== expected) {
      expect.fail('api.gen.ts is stale: run npm run generate:firecracker');
    }
  });

  it('is deterministic and starts with the do-not-edit header', async () => {
    const gen = await loadGenerator();
    const text = readFileSync(gen.DEFAULT_SPEC_PATH, 'utf8');
    const first = gen.generateFirecrackerTypes(text);
    expect(gen.generateFirecrackerTypes(text)).toBe(first);
    expect(first.split('\n')[0]).toBe('// Generated, do not edit; run npm run generate:firecracker');
  });

  it('has one operation entry per operation of the spec, with the same method and path template', () => {
    const spec = loadFirecrackerSpec();
    expect(FIRECRACKER_API_VERSION).toBe(spec.version);
    const fromSpec = spec.operations.map((o) => `${o.operationId} ${o.method} ${o.path} ${o.bodyType}`).sort();
    const generated = Object.entries(FIRECRACKER_OPERATIONS)
      .map(([id, o]) => `${id} ${o.method} ${o.path} ${o.bodyType}`)
      .sort();
    expect(generated).toEqual(fromSpec);
  });
});
