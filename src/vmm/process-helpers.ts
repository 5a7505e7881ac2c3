import { VmmSpawnFailedError } from '../errors/index.js';
import type { ExitInfo } from '../process/index.js';

/** Unix socket paths are limited to 107 bytes on Linux (and Node silently truncates longer listen paths). */
export const MAX_SOCKET_PATH = 107;

/**
 * Throws VmmSpawnFailedError, before anything is started, when a socket
 * path the VMM or tfc will use is too long. `hint` says which setting to shorten.
 */
export function checkSocketPaths(paths: readonly string[], hint = 'choose a shorter data_dir'): void {
  for (const path of paths) {
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
      throw new VmmSpawnFailedError(`socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes; ${hint}`);
    }
  }
}

/** "exit code 1" or "signal SIGKILL", for messages about a VMM that exited. */
export function describeExit(exit: ExitInfo): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}
