import { readFileSync, statfsSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';

/** Readings of the host the monitor judges (replaceable in tests). */
export interface HostReader {
  /** Available and total memory in bytes, or null when unknown. */
  memory(): { availableBytes: number; totalBytes: number } | null;
  /** Space available to unprivileged users and size of the file system holding `path`, or null when it cannot be read. */
  disk(path: string): { availableBytes: number; totalBytes: number } | null;
}

/** MemAvailable and MemTotal of /proc/meminfo text, in bytes; null when either is missing. */
export function parseMeminfo(text: string): { availableBytes: number; totalBytes: number } | null {
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const available = field('MemAvailable');
  const total = field('MemTotal');
  return available === undefined || total === undefined || total === 0 ? null : { availableBytes: available, totalBytes: total };
}

/** The real host: /proc/meminfo (os.freemem where there is none) and statfs(2). */
export const systemHost: HostReader = {
  memory() {
    try {
      const parsed = parseMeminfo(readFileSync('/proc/meminfo', 'utf8'));
      if (parsed) return parsed;
    } catch {
      // Not Linux: free memory is the closest the os module has.
    }
    return { availableBytes: freemem(), totalBytes: totalmem() };
  },
  disk(path) {
    try {
      const s = statfsSync(path);
      return s.blocks > 0 ? { availableBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize } : null;
    } catch {
      return null;
    }
  },
};
