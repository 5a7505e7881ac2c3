/**
 * Small in-memory stand-ins for the API's dependencies, for tests of the
 * HTTP layer without VMs: one running VM whose agent answers from memory
 * (exec results are scripted; files live in a Map and stream in chunks).
 * Test-only: only tests import it.
 */
import { VmNotFoundError, AgentError, PayloadTooLargeError, type TfcError } from '../errors/index.js';
import type { ExecRequest, ExecResult } from '../guest/agent-client.js';
import type { GuestDirListing, GuestFileStat, ListDirOptions, MkdirOptions, RemoveOptions } from '../guest/agent-fs.js';
import type { ApiDeps } from '../api/deps.js';
import type { ApiLimits } from '../api/limits.js';

export const FAKE_TOKEN = 'fake-token-0123456789';
export const FAKE_VM_ID = 'vm-0123456789ab';

export interface FakeVm {
  id: string;
  profileName: string;
  state: string;
  driverName: string;
  accel: string;
  createdBy: 'boot' | 'restore';
  bootPhases: Array<{ name: string; ms: number }>;
  network: null;
  /** Every exec request, in order. */
  execs: ExecRequest[];
  /** What exec answers (stdout/stderr as raw bytes). */
  nextExec: Partial<ExecResult>;
  /** Files by path: written through writeFileFrom, or put here to be read. */
  files: Map<string, Buffer>;
  /** Bytes written by uploads when `keepUploads` is false (a 1 GiB upload is counted, not kept). */
  uploadedBytes: number;
  keepUploads: boolean;
  /** Largest chunk readFileChunks yields. */
  chunkBytes: number;
  exec(request: ExecRequest): Promise<ExecResult>;
  writeFileFrom(path: string, source: AsyncIterable<Buffer>, options?: { mode?: number; mkdirs?: boolean }): Promise<{ bytes: number }>;
  readFileChunks(path: string, options?: { maxBytes?: number }): AsyncIterable<Buffer>;
  /** Directories (besides "/" and the parents of files), for list/stat/mkdir/remove. */
  dirs: Set<string>;
  listDir(path: string, options?: ListDirOptions): Promise<GuestDirListing>;
  stat(path: string): Promise<GuestFileStat>;
  mkdir(path: string, options?: MkdirOptions): Promise<{ created: boolean }>;
  remove(path: string, options?: RemoveOptions): Promise<{ removed: number }>;
  pause(): Promise<void>;
  resume(): Promise<void>;
}

function agentFailure(op: string, code: string, message: string): TfcError {
  return new AgentError(`guest agent ${op} failed (${code}): ${message}`, { details: { agent_code: code, op } });
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

export function fakeVm(): FakeVm {
  const vm: FakeVm = {
    id: FAKE_VM_ID,
    profileName: 'minimal',
    state: 'running',
    driverName: 'qemu',
    accel: 'tcg',
    createdBy: 'boot',
    bootPhases: [],
    network: null,
    execs: [],
    nextExec: {},
    files: new Map(),
    uploadedBytes: 0,
    keepUploads: true,
    chunkBytes: 1024 * 1024,
    async exec(request) {
      vm.execs.push(request);
      return {
        exitCode: 0,
        signal: null,
        stdout: Buffer.alloc(0),
        stderr: Buffer.alloc(0),
        stdoutTruncated: false,
        stderrTruncated: false,
        timedOut: false,
        durationMs: 1,
        ...vm.nextExec,
      };
    },
    async writeFileFrom(path, source) {
      const parts: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of source) {
        bytes += chunk.length;
        if (vm.keepUploads) parts.push(chunk);
      }
      vm.uploadedBytes += bytes;
      if (vm.keepUploads) vm.files.set(path, Buffer.concat(parts));
      return { bytes };
    },
    async *readFileChunks(path, options = {}) {
      const data = vm.files.get(path);
      if (!data)
        throw new AgentError(`guest agent read_file failed (FILE_NOT_FOUND): ${path}: No such file or directory`, {
          details: { agent_code: 'FILE_NOT_FOUND', op: 'read_file' },
        });
      if (options.maxBytes !== undefined && data.length > options.maxBytes) {
        throw new PayloadTooLargeError(`${path} is over the download limit`, { details: { limit_bytes: options.maxBytes } });
      }
      for (let at = 0; at < data.length; at += vm.chunkBytes) yield data.subarray(at, at + vm.chunkBytes);
    },
    dirs: new Set(),
    async listDir(path, options = {}) {
      if (!isDir(path)) throw agentFailure('list_dir', 'FILE_NOT_FOUND', `no such file or directory in guest: ${path}`);
      const names = new Map<string, 'file' | 'dir'>();
      for (const f of vm.files.keys()) if (parentOf(f) === path) names.set(f.slice(f.lastIndexOf('/') + 1), 'file');
      for (const d of allDirs()) if (d !== '/' && parentOf(d) === path) names.set(d.slice(d.lastIndexOf('/') + 1), 'dir');
      const all = [...names].sort(([a], [b]) => (a < b ? -1 : 1));
      const max = options.maxEntries ?? 10_000;
      const entries = all.slice(0, max).map(([name, type]) => ({
        name,
        type,
        size: type === 'file' ? vm.files.get(`${path === '/' ? '' : path}/${name}`)!.length : 4096,
        mode: type === 'file' ? 0o644 : 0o755,
        mtimeMs: 0,
      }));
      return { entries, truncated: all.length > max };
    },
    async stat(path) {
      const file = vm.files.get(path);
      if (!file && !isDir(path)) throw agentFailure('stat', 'FILE_NOT_FOUND', `no such file or directory in guest: ${path}`);
      return { type: file ? 'file' : 'dir', size: file ? file.length : 4096, mode: file ? 0o644 : 0o755, uid: 0, gid: 0, mtimeMs: 0, symlinkTarget: null };
    },
    async mkdir(path, options = {}) {
      if (vm.files.has(path)) throw agentFailure('mkdir', 'FILE_EXISTS', `${path} already exists in guest and is not a directory`);
      if (isDir(path)) {
        if (!options.parents) throw agentFailure('mkdir', 'FILE_EXISTS', `${path} already exists in guest`);
        return { created: false };
      }
      if (!options.parents && !isDir(parentOf(path))) throw agentFailure('mkdir', 'FILE_NOT_FOUND', `no such file or directory in guest: ${path}`);
      vm.dirs.add(path);
      return { created: true };
    },
    async remove(path, options = {}) {
      if (path === '/') throw agentFailure('remove', 'BAD_REQUEST', 'refusing to remove the root directory (/)');
      if (vm.files.delete(path)) return { removed: 1 };
      if (!isDir(path)) throw agentFailure('remove', 'FILE_NOT_FOUND', `no such file or directory in guest: ${path}`);
      const inside = (p: string) => p.startsWith(`${path}/`);
      const contents = [...vm.files.keys()].filter(inside).length + [...vm.dirs].filter(inside).length;
      if (contents > 0 && !options.recursive)
        throw agentFailure('remove', 'FILE_ERROR', `cannot remove ${path}: directory not empty; pass recursive to remove its contents`);
      for (const f of [...vm.files.keys()]) if (inside(f)) vm.files.delete(f);
      for (const d of [...vm.dirs]) if (inside(d)) vm.dirs.delete(d);
      vm.dirs.delete(path);
      return { removed: contents + 1 };
    },
    async pause() {
      vm.state = 'paused';
    },
    async resume() {
      vm.state = 'running';
    },
  };
  // Directories: "/", those made with mkdir, and every parent of a file or directory.
  function allDirs(): Set<string> {
    const out = new Set<string>(['/']);
    for (const p of [...vm.files.keys(), ...vm.dirs]) {
      if (vm.dirs.has(p)) out.add(p);
      for (let d = parentOf(p); d !== '/'; d = parentOf(d)) out.add(d);
    }
    return out;
  }
  function isDir(path: string): boolean {
    return allDirs().has(path);
  }
  return vm;
}

/** ApiDeps serving `vm` (not in any pool, so usable without allocation) and no pools. */
export function fakeDeps(vm: FakeVm, limits: Partial<ApiLimits> = {}): ApiDeps {
  const deps = {
    token: FAKE_TOKEN,
    version: '0.0.0-test',
    limits,
    pools: {
      list: () => [],
      poolOf: () => undefined,
      get: (name: string) => {
        throw new VmNotFoundError(`no pool named "${name}"`);
      },
    },
    service: {
      list: () => [vm],
      get: (id: string) => (id === vm.id ? vm : undefined),
      destroy: async () => undefined,
    },
    repo: {
      get: (id: string) => {
        throw new VmNotFoundError(`no VM with id "${id}"`);
      },
      phases: () => [],
    },
  };
  return deps as unknown as ApiDeps;
}
