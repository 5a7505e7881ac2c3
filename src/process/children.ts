/**
 * Finds a process's child pid through /proc, for supervise.ts (the program
 * a guard process started). Reads only; never signals anything.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Pids of `pid`'s children, from /proc/PID/task/PID/children (CONFIG_PROC_CHILDREN) or, without it, a scan of /proc. */
export function childPids(pid: number): number[] {
  try {
    return parsePids(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!existsSync(`/proc/${pid}`)) return []; // the parent itself is gone
  }
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // "PID (comm) STATE PPID ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) found.push(Number(name));
  }
  return found;
}

export function parsePids(text: string): number[] {
  return text
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

function readCmdline(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return null;
  }
}

/**
 * Polls until `pid` has a child that has exec'd (its command line differs
 * from the parent's: between fork and exec it still runs the parent's code
 * and signal handlers) and returns it; null when `gone()` turns true (the
 * parent exited) or `timeoutMs` passes.
 */
export async function findExecedChild(pid: number, options: { timeoutMs: number; gone: () => boolean }): Promise<number | null> {
  const deadline = Date.now() + options.timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    if (options.gone()) return null;
    const [child] = childPids(pid);
    if (child !== undefined) {
      const own = readCmdline(child);
      if (own !== null && own !== '' && own !== readCmdline(pid)) return child;
    }
    if (Date.now() >= deadline) return null;
    await new Promise((r) => setTimeout(r, delay));
  }
}
