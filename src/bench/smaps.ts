/**
 * Where a VMM process's memory goes, from /proc/PID/smaps: each mapping
 * sorted into a kind (guest RAM, TCG code buffer, QEMU heap, other
 * anonymous memory, files) and summed. The input of the density work
 * (issue 11): which part of an idle clone's private memory to cut.
 *
 * Parsing and classification are pure (unit-tested on fixture text);
 * `smapsBreakdown` reads /proc.
 */
import { readFileSync } from 'node:fs';

/** One mapping of /proc/PID/smaps; sizes in KiB. */
export interface SmapsMapping {
  start: bigint;
  end: bigint;
  perms: string;
  /** The mapped file or pseudo-name ([heap], [stack], /memfd:...); '' for anonymous memory. */
  path: string;
  sizeKib: number;
  rssKib: number;
  pssKib: number;
  privateDirtyKib: number;
  privateCleanKib: number;
}

export const MAPPING_KINDS = ['guest-ram', 'tcg-code', 'heap', 'anon-other', 'guest-image', 'files'] as const;
export type MappingKind = (typeof MAPPING_KINDS)[number];

/** What each kind holds, for printing. */
export const MAPPING_KIND_LABELS: Record<MappingKind, string> = {
  'guest-ram': 'guest RAM (memory-backend file or anonymous RAM)',
  'tcg-code': 'TCG translation buffer (tb-size)',
  heap: 'QEMU heap ([heap])',
  'anon-other': 'other anonymous (thread arenas and stacks, device buffers)',
  'guest-image': 'guest kernel and initrd files (kept mapped by the loader)',
  files: 'QEMU binary, libraries and other file mappings',
};

export interface KindTotals {
  mappings: number;
  sizeKib: number;
  rssKib: number;
  pssKib: number;
  privateDirtyKib: number;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+ *(.*)$/;
const FIELD = /^(Rss|Pss|Private_Dirty|Private_Clean):\s+(\d+) kB$/;

/**
 * Parses the text of /proc/PID/smaps. Throws when the text has fields
 * before any mapping header (not smaps text). Unknown fields are skipped.
 */
export function parseSmaps(text: string): SmapsMapping[] {
  const out: SmapsMapping[] = [];
  let current: SmapsMapping | undefined;
  for (const line of text.split('\n')) {
    const h = HEADER.exec(line);
    if (h) {
      const start = BigInt(`0x${h[1]}`);
      const end = BigInt(`0x${h[2]}`);
      current = {
        start,
        end,
        perms: h[3],
        path: h[4].trim(),
        sizeKib: Number((end - start) / 1024n),
        rssKib: 0,
        pssKib: 0,
        privateDirtyKib: 0,
        privateCleanKib: 0,
      };
      out.push(current);
      continue;
    }
    const f = FIELD.exec(line);
    if (!f) continue;
    if (!current) throw new Error(`smaps text has "${line}" before any mapping header`);
    const kib = Number(f[2]);
    if (f[1] === 'Rss') current.rssKib = kib;
    else if (f[1] === 'Pss') current.pssKib = kib;
    else if (f[1] === 'Private_Dirty') current.privateDirtyKib = kib;
    else current.privateCleanKib = kib;
  }
  return out;
}

/** What identifies the guest's mappings in a VMM. */
export interface MappingHint {
  /** The memory-backend file (a clone's golden memory file, a template's shared file), when RAM lives in one. */
  ramPath?: string;
  /** Guest RAM size: an anonymous mapping of exactly this size (up to 2 MiB of alignment more) is RAM. */
  ramMib: number;
  /** The image files given to the VMM (-kernel, -initrd): QEMU's loader maps them and keeps them for a reset. */
  imagePaths?: readonly string[];
}

/**
 * The kind of every mapping, in order. Rules, first match wins:
 * - the memory-backend file (`ramPath`, also when shown "(deleted)"), or an
 *   anonymous read-write mapping of the RAM size: guest RAM;
 * - anonymous executable memory (QEMU 7.2 maps its code buffer rwx), or the
 *   `tcg-jit` memfd of a split-wx build: TCG translation buffer; if none is
 *   executable, the largest remaining anonymous mapping;
 * - the image files (`imagePaths`): guest image;
 * - `[heap]`: heap; other anonymous or bracketed pseudo-mappings except
 *   [vdso]/[vvar]/[vsyscall]: other anonymous; the rest: files.
 */
export function classifyMappings(mappings: readonly SmapsMapping[], hint: MappingHint): MappingKind[] {
  const ramKib = hint.ramMib * 1024;
  const kinds: Array<MappingKind | undefined> = mappings.map((m) => {
    const path = m.path.replace(/ \(deleted\)$/, '');
    if (hint.ramPath !== undefined && path === hint.ramPath) return 'guest-ram';
    if (m.path === '' && m.perms.startsWith('rw') && m.sizeKib >= ramKib && m.sizeKib <= ramKib + 2048) return 'guest-ram';
    if ((m.path === '' && m.perms[2] === 'x') || path.startsWith('/memfd:tcg-jit')) return 'tcg-code';
    if (hint.imagePaths?.includes(path)) return 'guest-image';
    if (m.path === '[heap]') return 'heap';
    return undefined;
  });
  if (!kinds.includes('tcg-code')) {
    let largest = -1;
    mappings.forEach((m, i) => {
      if (kinds[i] === undefined && m.path === '' && (largest < 0 || m.sizeKib > mappings[largest].sizeKib)) largest = i;
    });
    if (largest >= 0) kinds[largest] = 'tcg-code';
  }
  const anonymous = (m: SmapsMapping) => m.path === '' || (m.path.startsWith('[') && !/^\[(vdso|vvar|vsyscall)\]$/.test(m.path));
  return mappings.map((m, i) => kinds[i] ?? (anonymous(m) ? 'anon-other' : 'files'));
}

/** Sums of each kind, every kind present (zeros when it has no mapping). */
export function summarizeSmaps(mappings: readonly SmapsMapping[], hint: MappingHint): Record<MappingKind, KindTotals> {
  const totals = Object.fromEntries(
    MAPPING_KINDS.map((k) => [k, { mappings: 0, sizeKib: 0, rssKib: 0, pssKib: 0, privateDirtyKib: 0 } satisfies KindTotals]),
  ) as Record<MappingKind, KindTotals>;
  classifyMappings(mappings, hint).forEach((kind, i) => {
    const m = mappings[i];
    const t = totals[kind];
    t.mappings++;
    t.sizeKib += m.sizeKib;
    t.rssKib += m.rssKib;
    t.pssKib += m.pssKib;
    t.privateDirtyKib += m.privateDirtyKib;
  });
  return totals;
}

/** The VmPTE line of /proc/PID/status text (page tables, which smaps does not count), in KiB; 0 when absent. */
export function pageTablesKib(statusText: string): number {
  const m = /^VmPTE:\s+(\d+) kB$/m.exec(statusText);
  return m ? Number(m[1]) : 0;
}

/** The breakdown of a live process (reads /proc/PID/smaps and status). Throws when the process is gone. */
export function smapsBreakdown(pid: number, hint: MappingHint): { kinds: Record<MappingKind, KindTotals>; pageTablesKib: number } {
  const kinds = summarizeSmaps(parseSmaps(readFileSync(`/proc/${pid}/smaps`, 'utf8')), hint);
  return { kinds, pageTablesKib: pageTablesKib(readFileSync(`/proc/${pid}/status`, 'utf8')) };
}
