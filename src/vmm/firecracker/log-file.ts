/**
 * Firecracker's log file (PUT /logger): the level names it takes, and the
 * tail of the file for error messages (Firecracker explains most failures
 * there rather than on stderr).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type * as Api from './api.gen.js';

export type FirecrackerLogLevel = 'error' | 'warning' | 'info' | 'debug' | 'trace' | 'off';

/** Config's lower-case level as Firecracker spells it. */
export function loggerLevel(level: FirecrackerLogLevel): NonNullable<Api.Logger['level']> {
  return (level[0].toUpperCase() + level.slice(1)) as NonNullable<Api.Logger['level']>;
}

/** The last `lines` lines of the file at `path` (reads at most its last 16 KiB); '' when missing or empty. Never throws. */
export function readLogTail(path: string, lines = 10): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const length = Math.min(size, 16 * 1024);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
