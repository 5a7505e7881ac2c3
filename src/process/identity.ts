import { readFileSync } from 'node:fs';

/**
 * When process `pid` started, in clock ticks since boot (field 22 of
 * /proc/PID/stat), or null when there is no such process. A pid and its
 * start time together identify a process even after pids are reused.
 */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : null;
  } catch {
    return null;
  }
}

/** True when the process that had `pid` and started at `startTime` is still running. */
export function isSameProcessAlive(pid: number | null, startTime: number | null): boolean {
  if (!pid) return false;
  const now = processStartTime(pid);
  return now !== null && (startTime === null || now === startTime);
}
