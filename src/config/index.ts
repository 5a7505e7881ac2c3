/**
 * Config: owns tfc.toml — finding it (--config, $TFC_CONFIG, ./tfc.toml,
 * built-in defaults), its schema and defaults, environment overrides, error
 * messages that point at the offending line, profiles, and `config show`.
 * The rest of the project reads a `Config` and never parses TOML or reads
 * TFC_* variables itself; keys and env vars are documented in
 * docs/configuration.md.
 *
 * This module must not start processes, touch VMs or images, or write files;
 * it only reads the config file and the environment it is handed.
 */

export type {
  JailerConfig,
  BootLevel,
  Config,
  ConfigProblem,
  DebianImageDefinition,
  DriverName,
  ImageDefinition,
  ImageKind,
  LoadedConfig,
  MinimalImageDefinition,
  OciImageDefinition,
  LogLevel,
  PoolConfig,
  PoolMode,
  PoolStrategyName,
  PrewarmState,
  Profile,
  QemuAccel,
  TerraphimConfig,
  ValueSource,
} from './types.js';
export { loadConfig, validateConfigFile, defaultConfig, type LoadConfigOptions, type ValidateResult } from './load.js';
export { renderConfigShow, configDocument } from './show.js';
export { resolveProfile } from './profiles.js';
export { ENV_OVERRIDES, CONFIG_PATH_ENV } from './env.js';
export { DEFAULT_CONFIG_FILE, type ConfigFileOrigin } from './locate.js';
export {
  BOOT_LEVELS,
  BUILTIN_IMAGES,
  BUILTIN_POOL,
  BUILTIN_PROFILE,
  BUILTIN_PROFILES,
  BUILTIN_VM_TYPES,
  DRIVERS,
  IMAGE_NAME_PATTERN,
  LOG_LEVELS,
  POOL_STRATEGIES,
  PROFILE_NAME_PATTERN,
  QEMU_ACCELS,
} from './schema.js';
export { BUILTIN_IMAGE_FIELDS, BUILTIN_PROFILE_FIELDS, IMAGE_DEFAULTS } from './defaults.js';
