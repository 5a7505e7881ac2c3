/**
 * Module boundaries (after Firecracker's crates, which never import upward):
 * the top-level folders of src/ form an acyclic graph, net/ and vmm/ never
 * import each other (the cleanup stack lives in steps/, the namespace exec
 * prefix in process/, each driver owns its network argv), and the CLI
 * reaches the daemon only through the command that runs it. Reads the
 * import statements of the sources (tests excluded: fixtures may cross).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = dirname(fileURLToPath(import.meta.url));

interface Import {
  /** Importing file, relative to src/ (e.g. "net/network-manager.ts"). */
  from: string;
  /** Imported file, relative to src/. */
  to: string;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** Relative imports (static, re-exports and dynamic) of every source under src/. */
function imports(): Import[] {
  const found: Import[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) {
      found.push({ from: relative(SRC, file), to: relative(SRC, resolve(dirname(file), m[1])) });
    }
  }
  return found;
}

const moduleOf = (path: string) => (path.includes('/') ? path.split('/')[0] : '(root)');
const all = imports();
const crossing = (from: string, to: string) => all.filter((i) => moduleOf(i.from) === from && moduleOf(i.to) === to).map((i) => `${i.from} -> ${i.to}`);

describe('module boundaries', () => {
  it('finds the imports it checks (the scan itself works)', () => {
    expect(crossing('vm', 'vmm').length).toBeGreaterThan(0);
    expect(crossing('daemon', 'runtime').length).toBeGreaterThan(0);
  });

  it('keeps net/ and vmm/ independent of each other', () => {
    expect(crossing('net', 'vmm')).toEqual([]);
    expect(crossing('vmm', 'net')).toEqual([]);
  });

  it('lets the CLI reach daemon/ only through `tfc serve`', () => {
    expect(crossing('cli', 'daemon').filter((line) => !line.startsWith('cli/commands/serve.ts '))).toEqual([]);
  });

  it('has no import cycle between the top-level modules', () => {
    const edges = new Map<string, Set<string>>();
    for (const i of all) {
      const [a, b] = [moduleOf(i.from), moduleOf(i.to)];
      if (a !== b) edges.set(a, (edges.get(a) ?? new Set()).add(b));
    }
    // Depth-first search; a back edge is a cycle, reported as its path.
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (node: string, path: string[]) => {
      state.set(node, 'open');
      for (const next of edges.get(node) ?? []) {
        if (state.get(next) === 'open') cycles.push([...path.slice(path.indexOf(next)), node, next].join(' -> '));
        else if (!state.has(next)) visit(next, [...path, node]);
      }
      state.set(node, 'done');
    };
    for (const node of edges.keys()) if (!state.has(node)) visit(node, []);
    expect(cycles).toEqual([]);
  });
});
