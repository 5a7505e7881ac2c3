import { describe, expect, it } from 'vitest';
import { ENV_OVERRIDES, readEnvOverrides } from './env.js';
import { schemaAt } from './schema.js';

describe('ENV_OVERRIDES', () => {
  it('only names keys that exist in the schema, each once', () => {
    for (const { key } of ENV_OVERRIDES) expect(schemaAt(key.split('.')), key).toBeDefined();
    expect(new Set(ENV_OVERRIDES.map((o) => o.key)).size).toBe(ENV_OVERRIDES.length);
    expect(ENV_OVERRIDES.map((o) => o.env)).toEqual(['TFC_DATA_DIR', 'TFC_LOG_LEVEL', 'TFC_QEMU_BINARY', 'TFC_QEMU_ACCEL', 'FIRECRACKER_BIN', 'TFC_LISTEN']);
  });

  it('ignores unrelated variables', () => {
    expect(readEnvOverrides({ PATH: '/bin', TFC_OTHER: 'x' })).toEqual({ overrides: [], problems: [] });
  });
});
