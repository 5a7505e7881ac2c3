import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/**
 * Resolves `name` to an absolute executable path using PATH (plus the sbin
 * directories, which a non-login root shell may lack). Returns null when
 * not found; never throws.
 */
export function findExecutable(name: string, envPath = process.env.PATH ?? ''): string | null {
  const candidates = name.includes('/')
    ? [isAbsolute(name) ? name : join(process.cwd(), name)]
    : [...envPath.split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter((d) => d.length > 0).map((d) => join(d, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return null;
}
