import { describe, expect, it } from 'vitest';
import { TfcError } from '../errors/index.js';
import { defaultConfig, resolveProfile } from './index.js';

describe('resolveProfile', () => {
  const config = defaultConfig({ env: { HOME: '/h' }, uid: 1 });
  config.profiles.big = { ...config.profiles.minimal, name: 'big', vcpus: 4 };

  it('returns the default profile when no name is given, and a named one otherwise', () => {
    expect(resolveProfile(config).name).toBe('minimal');
    expect(resolveProfile(config, 'big').vcpus).toBe(4);
  });

  it('returns a copy', () => {
    resolveProfile(config, 'big').vcpus = 8;
    expect(config.profiles.big.vcpus).toBe(4);
  });

  it('throws PROFILE_NOT_FOUND listing the available profiles', () => {
    let err: unknown;
    try {
      resolveProfile(config, 'huge');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TfcError);
    const e = err as TfcError;
    expect(e.code).toBe('PROFILE_NOT_FOUND');
    expect(e.status).toBe(404);
    expect(e.message).toContain('profile "huge" not found; available: minimal, python, node, big');
    expect(e.details).toEqual({ name: 'huge', available: ['minimal', 'python', 'node', 'big'] });
  });

  it('does not resolve inherited object keys', () => {
    expect(() => resolveProfile(config, 'toString')).toThrow(/not found/);
  });
});
