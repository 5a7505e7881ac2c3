/**
 * The API bearer token shared by the server (`tfc serve`) and its clients
 * (the `tfc` client commands): TFC_TOKEN or data_dir/api-token. Kept out of
 * daemon/ so the CLI's client side does not import the daemon.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InvalidArgumentError } from '../errors/index.js';

export interface ApiToken {
  token: string;
  /** Where it came from: the env var, or the token file (created if missing). */
  source: 'env' | 'file';
  path: string | null;
}

export function tokenPath(dataDir: string): string {
  return join(dataDir, 'api-token');
}

/**
 * The API bearer token: TFC_TOKEN when set, otherwise data_dir/api-token,
 * generated (32 random bytes, hex) with mode 0600 on first use. Throws
 * InvalidArgumentError for a TFC_TOKEN shorter than 16 characters.
 */
export function loadOrCreateToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): ApiToken {
  const fromEnv = env.TFC_TOKEN;
  if (fromEnv) {
    if (fromEnv.length < 16 || /\s/.test(fromEnv)) throw new InvalidArgumentError('TFC_TOKEN must be at least 16 characters without spaces');
    return { token: fromEnv, source: 'env', path: null };
  }
  const path = tokenPath(dataDir);
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  }
  // Keep it private even if someone loosened it.
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  return { token: readFileSync(path, 'utf8').trim(), source: 'file', path };
}

/** For clients: TFC_TOKEN, else the token file if readable, else null. */
export function readToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.TFC_TOKEN) return env.TFC_TOKEN;
  try {
    return readFileSync(tokenPath(dataDir), 'utf8').trim();
  } catch {
    return null;
  }
}
