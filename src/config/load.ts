// The two entry points that read configuration from disk.
import { TfcError } from '../errors/index.js';
import { readEnvOverrides } from './env.js';
import { readConfigFile } from './file.js';
import { locateConfigFile } from './locate.js';
import { invalidConfigError } from './problems.js';
import { resolveConfig } from './resolve.js';
import type { Config, LoadedConfig } from './types.js';

export interface LoadConfigOptions {
  /** Explicit file (CLI --config); must exist. Relative to `cwd`. */
  configPath?: string;
  /** Environment to read TFC_CONFIG and overrides from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Where ./tfc.toml is looked for and relative paths resolve; default process.cwd(). */
  cwd?: string;
  /** Decides the data_dir default (root gets /var/lib/tfc); default process.getuid(). */
  uid?: number;
}

/**
 * Finds, reads and validates the config file (lookup: `configPath`,
 * $TFC_CONFIG, ./tfc.toml, none), applies env overrides, and returns the
 * effective config with the source of every value. Synchronous, no caching:
 * each call re-reads the file and returns fresh objects.
 *
 * Throws ConfigNotFoundError when `configPath` or $TFC_CONFIG names a missing
 * file; ConfigInvalidError for a TOML syntax error or, listing all of them at
 * once, every schema problem in the file and every bad env override.
 */
export function loadConfig(opts: LoadConfigOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const uid = opts.uid ?? process.getuid?.() ?? -1;

  const located = locateConfigFile({ configPath: opts.configPath, env, cwd });
  const file = located ? readConfigFile(located) : null;
  const { overrides, problems: envProblems } = readEnvOverrides(env);
  const problems = [...(file?.problems ?? []), ...envProblems];
  if (problems.length > 0) throw invalidConfigError(file?.path ?? null, problems);

  return resolveConfig({ env, uid, cwd, file, overrides });
}

export type ValidateResult = { ok: true } | { ok: false; error: TfcError };

/**
 * Checks one file as `tfc config validate FILE` does: syntax and schema only;
 * the environment is ignored (it is not part of the file). Never throws a
 * TfcError: a missing file, a syntax error or schema problems come back as
 * `{ok: false, error}` (ConfigNotFoundError / ConfigInvalidError with
 * `details.errors`). Other errors (bugs) propagate. Relative paths resolve
 * against process.cwd().
 */
export function validateConfigFile(path: string): ValidateResult {
  try {
    const located = locateConfigFile({ configPath: path, env: {}, cwd: process.cwd() });
    const file = located ? readConfigFile(located) : null;
    if (file && file.problems.length > 0) return { ok: false, error: invalidConfigError(file.path, file.problems) };
    return { ok: true };
  } catch (err) {
    if (err instanceof TfcError) return { ok: false, error: err };
    throw err;
  }
}

/**
 * The built-in defaults alone (no file, no environment overrides); for
 * tests and callers that need a Config without touching the disk. `env` and
 * `uid` only pick the data_dir default.
 */
export function defaultConfig(opts: { env?: NodeJS.ProcessEnv; uid?: number; cwd?: string } = {}): Config {
  const env = opts.env ?? process.env;
  const uid = opts.uid ?? process.getuid?.() ?? -1;
  return resolveConfig({ env, uid, cwd: opts.cwd ?? process.cwd(), file: null, overrides: [] }).config;
}
