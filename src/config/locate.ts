// Which config file to read: --config, then $TFC_CONFIG, then ./tfc.toml in
// the working directory, else none (built-in defaults). Only the first two
// are required to exist: naming a file that is missing is a mistake worth
// stopping for, while a missing ./tfc.toml just means "use the defaults".
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigNotFoundError } from '../errors/index.js';
import { CONFIG_PATH_ENV } from './env.js';

export const DEFAULT_CONFIG_FILE = 'tfc.toml';

/** How the file was chosen: `explicit` = a path passed in (CLI --config or `config validate FILE`), `env` = $TFC_CONFIG, `cwd` = ./tfc.toml. */
export type ConfigFileOrigin = 'explicit' | 'env' | 'cwd';

export interface LocatedConfigFile {
  /** Absolute path. */
  path: string;
  from: ConfigFileOrigin;
}

export function describeOrigin(from: ConfigFileOrigin): string {
  if (from === 'explicit') return 'given on the command line';
  if (from === 'env') return `set by ${CONFIG_PATH_ENV}`;
  return 'found in the current directory';
}

/**
 * Applies the lookup order. Relative paths resolve against `cwd`. Throws
 * ConfigNotFoundError (details: {path, from}) when an explicit path or
 * $TFC_CONFIG names a file that does not exist; returns null when neither is
 * set and there is no ./tfc.toml.
 */
export function locateConfigFile(opts: { configPath?: string; env: NodeJS.ProcessEnv; cwd: string }): LocatedConfigFile | null {
  const fromEnv = opts.env[CONFIG_PATH_ENV];
  const named: LocatedConfigFile | null =
    opts.configPath !== undefined
      ? { path: resolve(opts.cwd, opts.configPath), from: 'explicit' }
      : fromEnv
        ? { path: resolve(opts.cwd, fromEnv), from: 'env' }
        : null;
  if (named) {
    if (!existsSync(named.path)) throw notFound(named);
    return named;
  }
  const local = resolve(opts.cwd, DEFAULT_CONFIG_FILE);
  return existsSync(local) ? { path: local, from: 'cwd' } : null;
}

export function notFound(located: LocatedConfigFile, cause?: unknown): InstanceType<typeof ConfigNotFoundError> {
  const fix = located.from === 'explicit' ? 'check the path' : located.from === 'env' ? `fix or unset ${CONFIG_PATH_ENV}` : 'create it';
  return new ConfigNotFoundError(`config file ${located.path} not found (${describeOrigin(located.from)}); ${fix}`, {
    cause,
    details: { path: located.path, from: located.from },
  });
}
