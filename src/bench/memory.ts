import { readFileSync } from 'node:fs';

/**
 * Proportional set size of a process in KiB (shared pages divided among the
 * processes sharing them), from /proc/PID/smaps_rollup. The fair way to add
 * up the memory of clones that share one memory file.
 */
export function pssKib(pid: number): number {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const m = /^Pss:\s+(\d+) kB/m.exec(text);
  if (!m) throw new Error(`no Pss in /proc/${pid}/smaps_rollup`);
  return Number(m[1]);
}
