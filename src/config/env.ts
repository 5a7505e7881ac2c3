// Environment overrides: the one table of which env var sets which key. An
// override wins over the file; an empty variable counts as unset (as shells
// often export empty values). Values are validated with the key's own schema.
import { schemaAt } from './schema.js';
import type { ConfigProblem } from './types.js';

export const ENV_OVERRIDES = [
  { key: 'data_dir', env: 'TFC_DATA_DIR' },
  { key: 'log_level', env: 'TFC_LOG_LEVEL' },
  { key: 'vmm.qemu.binary', env: 'TFC_QEMU_BINARY' },
  { key: 'vmm.qemu.accel', env: 'TFC_QEMU_ACCEL' },
  { key: 'vmm.firecracker.binary', env: 'FIRECRACKER_BIN' },
  { key: 'api.listen', env: 'TFC_LISTEN' },
] as const satisfies ReadonlyArray<{ key: string; env: string }>;

/** Names the config file instead of ./tfc.toml; see locate.ts. */
export const CONFIG_PATH_ENV = 'TFC_CONFIG';

export interface EnvOverride {
  key: string;
  env: string;
  value: unknown;
}

/**
 * Reads and validates every override present in `env`. All current
 * overrides are string keys, so the variable's text is the value; a numeric
 * key would need a parse step here.
 */
export function readEnvOverrides(env: NodeJS.ProcessEnv): { overrides: EnvOverride[]; problems: ConfigProblem[] } {
  const overrides: EnvOverride[] = [];
  const problems: ConfigProblem[] = [];
  for (const { key, env: name } of ENV_OVERRIDES) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    const schema = schemaAt(key.split('.'));
    if (!schema) throw new Error(`ENV_OVERRIDES names unknown key ${key}`);
    const result = schema.safeParse(text);
    if (result.success) {
      overrides.push({ key, env: name, value: result.data });
    } else {
      // Each leaf schema carries one rule text for all its checks; one problem per variable.
      problems.push({ key, value: text, env: name, message: result.error.issues[0].message });
    }
  }
  return { overrides, problems };
}
