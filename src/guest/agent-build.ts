import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { packagePath } from '../package-root.js';
import { runCommand } from '../process/index.js';

/** Directory of the guest agent's C sources (src/agent, beside dist/ in the package), with a trailing slash. */
export const AGENT_SOURCE_DIR = packagePath('src/agent/');

/** The agent's source files, sorted (the build and the cache key use the same list). */
export function agentSources(dir = AGENT_SOURCE_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.c') || f.endsWith('.h'))
    .sort()
    .map((f) => join(dir, f));
}

/** SHA256 over the agent sources' names and contents: part of the image cache key. */
export function agentSourceDigest(dir = AGENT_SOURCE_DIR): string {
  const hash = createHash('sha256');
  for (const path of agentSources(dir)) {
    hash.update(path.slice(dir.length)).update('\0').update(readFileSync(path)).update('\0');
  }
  return hash.digest('hex');
}

/**
 * Compiles the guest agent into a static binary at `output` (the guest has
 * no libc of its own). Throws ProcessFailedError with gcc's messages and an
 * install hint when gcc or the static libc is missing.
 */
export async function buildAgent(output: string, dir = AGENT_SOURCE_DIR): Promise<void> {
  const sources = agentSources(dir).filter((f) => f.endsWith('.c'));
  await runCommand('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-s', '-o', output, ...sources], {
    timeoutMs: 300_000,
    hint: 'install the compiler and static C library with `apt-get install gcc libc6-dev`',
  });
}
