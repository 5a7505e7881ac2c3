import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

/** Files git tracks or would track (untracked but not ignored), so new files count too. */
function projectFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' });
  return out.split('\0').filter((f) => f && !f.startsWith('vendor/'));
}

describe('the repository stands alone', () => {
  it('no file refers to a path outside the repository (a sibling shared directory or similar)', () => {
    const offenders: string[] = [];
    // Built from pieces so this file does not match itself.
    const outside = new RegExp(['\\.\\./', 'shared', '|', 'shared/', 'firecracker/firecracker\\.yaml'].join(''));
    for (const file of projectFiles()) {
      let text: string;
      try {
        text = readFileSync(join(ROOT, file), 'utf8');
      } catch {
        continue; // deleted in the work tree
      }
      text.split('\n').forEach((line, i) => {
        if (outside.test(line) && !line.includes('vendor/firecracker/firecracker.yaml')) offenders.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });

  it('vendors the Firecracker spec with its source and licence', () => {
    const source = readFileSync(join(ROOT, 'vendor/firecracker/SOURCE.md'), 'utf8');
    expect(source).toMatch(/commit \| `[0-9a-f]{12}`/);
    expect(readFileSync(join(ROOT, 'vendor/firecracker/LICENSE'), 'utf8')).toContain('Apache License');
    const spec = readFileSync(join(ROOT, 'vendor/firecracker/firecracker.yaml'), 'utf8');
    const version = /^\s+version: (\S+)/m.exec(spec)?.[1];
    expect(source).toContain(`\`${version}\``);
  });
});
