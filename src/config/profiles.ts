// Picking a profile by name.
import { ProfileNotFoundError } from '../errors/index.js';
import { PROFILE_NAME_PATTERN } from './schema.js';
import type { Config, Profile } from './types.js';

/**
 * The profile `name`, or `config.defaultProfile` when omitted. Returns a copy
 * (mutating it does not change the config). Throws ProfileNotFoundError
 * (details: {name, available}) listing the available names when unknown.
 */
export function resolveProfile(config: Config, name?: string): Profile {
  const wanted = name ?? config.defaultProfile;
  if (!Object.hasOwn(config.profiles, wanted)) {
    const available = Object.keys(config.profiles);
    const hint = PROFILE_NAME_PATTERN.test(wanted) ? ` (or define [profiles.${wanted}] in tfc.toml)` : '';
    throw new ProfileNotFoundError(`profile ${JSON.stringify(wanted)} not found; available: ${available.join(', ')}${hint}`, {
      details: { name: wanted, available },
    });
  }
  return { ...config.profiles[wanted] };
}
