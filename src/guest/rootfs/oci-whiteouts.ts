/**
 * OCI whiteouts: `.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq`
 * empties its directory of what lower layers put there. Whiteouts only ever
 * affect lower layers: entries the current layer already wrote (they may
 * come before the whiteout in the tar) are kept, so one pass over a layer
 * suffices. Deletion never follows a symlink: a whiteout whose parent is a
 * symlink is skipped (recorded), and a symlink named by a whiteout is
 * removed itself, not its target.
 */

import { readdirSync, rmSync } from 'node:fs';
import { checkParents, lstatOrNull, under } from './safe-path.js';

const PREFIX = '.wh.';
const OPAQUE = '.wh..wh..opq';

export type Whiteout = { kind: 'opaque'; dir: string[] } | { kind: 'delete'; target: string[] } | { kind: 'ignored' };

/** Classifies entry path components; null when the entry is not a whiteout. */
export function whiteoutOf(parts: string[]): Whiteout | null {
  const name = parts[parts.length - 1];
  if (name === undefined || !name.startsWith(PREFIX)) return null;
  const dir = parts.slice(0, -1);
  if (name === OPAQUE) return { kind: 'opaque', dir };
  // Other `.wh..wh.` names are aufs bookkeeping (hardlink dirs), never content.
  if (name.startsWith(`${PREFIX}${PREFIX}`)) return { kind: 'ignored' };
  const target = name.slice(PREFIX.length);
  if (target === '' || target === '.' || target === '..') return { kind: 'ignored' };
  return { kind: 'delete', target: [...dir, target] };
}

/**
 * Removes what lower layers put at `parts`: all of it when the current
 * layer wrote nothing there (`touched` holds the paths the current layer
 * wrote and their ancestors), else only the untouched children of a
 * directory, recursively.
 */
function removeLower(root: string, parts: string[], touched: ReadonlySet<string>): void {
  const abs = under(root, parts);
  if (!touched.has(parts.join('/'))) {
    // rm never follows symlinks, neither the one named nor any inside a directory.
    rmSync(abs, { recursive: true, force: true });
    return;
  }
  const st = lstatOrNull(abs);
  if (!st?.isDirectory()) return;
  for (const child of readdirSync(abs)) removeLower(root, [...parts, child], touched);
}

/**
 * Applies one whiteout under root. Returns null when applied (including
 * "nothing to delete"), else the reason it was skipped. Clears `known`
 * (the directory cache) when it removes anything.
 */
export function applyWhiteout(root: string, w: Whiteout, known: Set<string>, touched: ReadonlySet<string>): string | null {
  if (w.kind === 'ignored') return null;
  const parts = w.kind === 'opaque' ? w.dir : w.target;
  const why = checkParents(root, parts, known, false);
  if (why !== null) return why.endsWith('does not exist') ? null : why;
  const abs = under(root, parts);
  const st = lstatOrNull(abs);
  if (st === null) return null;
  known.clear();
  if (w.kind === 'delete') {
    removeLower(root, parts, touched);
    return null;
  }
  if (st.isSymbolicLink()) return `${parts.join('/')} is a symlink (not followed)`;
  if (!st.isDirectory()) return `opaque marker in ${parts.join('/')}, which is not a directory`;
  for (const child of readdirSync(abs)) removeLower(root, [...parts, child], touched);
  return null;
}
