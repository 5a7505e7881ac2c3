import { chmodSync, copyFileSync, lutimesSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ImageBuildFailedError } from '../errors/index.js';
import { runCommand } from '../process/index.js';
import { isStaticElf } from './elf.js';
import type { ResolvedModule } from './kernel-modules.js';

export interface InitramfsInputs {
  /** Static busybox binary (Debian busybox-static: /bin/busybox). */
  busyboxPath: string;
  agentPath: string;
  initScript: string;
  modules: readonly ResolvedModule[];
}

/**
 * Lays out the guest root in `rootDir`: busybox and one symlink per applet,
 * the agent, /init and the kernel modules. Throws ImageBuildFailedError when
 * busybox is not statically linked (the guest has no shared libraries).
 */
export async function assembleRoot(rootDir: string, inputs: InitramfsInputs): Promise<void> {
  const busybox = readFileSync(inputs.busyboxPath);
  if (!isStaticElf(busybox)) {
    throw new ImageBuildFailedError(`${inputs.busyboxPath} is not a static binary; install it with \`apt-get install busybox-static\``);
  }
  for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'lib/modules', 'dev', 'proc', 'sys', 'tmp', 'run', 'root', 'etc']) {
    mkdirSync(join(rootDir, dir), { recursive: true });
  }
  writeFileSync(join(rootDir, 'bin/busybox'), busybox, { mode: 0o755 });
  const applets = (await runCommand(inputs.busyboxPath, ['--list'])).stdout
    .toString()
    .split('\n')
    .map((a) => a.trim())
    .filter((a) => /^[a-z0-9_.[-]+$/i.test(a) && a !== 'busybox');
  for (const applet of [...new Set(applets)].sort()) symlinkSync('busybox', join(rootDir, 'bin', applet));
  copyFileSync(inputs.agentPath, join(rootDir, 'sbin/tfc-agent'));
  chmodSync(join(rootDir, 'sbin/tfc-agent'), 0o755);
  writeFileSync(join(rootDir, 'init'), inputs.initScript, { mode: 0o755 });
  for (const m of inputs.modules) copyFileSync(m.path, join(rootDir, 'lib/modules', `${m.name}.ko`));
  writeFileSync(join(rootDir, 'etc/hostname'), 'tfc-guest\n');
  writeFileSync(join(rootDir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(rootDir, 'etc/group'), 'root:x:0:\n');
}

/**
 * Packs `rootDir` into an uncompressed newc cpio archive at `output`
 * (uncompressed: decompression is the slow part of unpacking under TCG).
 * Deterministic: sorted entries, mtime 0, uid/gid 0, inode numbers
 * renumbered, so the same inputs give the same bytes.
 */
export async function packCpio(rootDir: string, output: string): Promise<void> {
  const entries = ['.', ...listTree(rootDir)].sort();
  for (const entry of entries) lutimesSync(join(rootDir, entry), 0, 0);
  const result = await runCommand('cpio', ['--quiet', '-o', '-H', 'newc', '--reproducible', '-R', '0:0'], {
    cwd: rootDir,
    input: entries.join('\n') + '\n',
    timeoutMs: 120_000,
    hint: 'install cpio with `apt-get install cpio`',
  });
  writeFileSync(output, result.stdout);
}

function listTree(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    out.push(relative(root, path));
    if (entry.isDirectory()) out.push(...listTree(root, path));
  }
  return out;
}
