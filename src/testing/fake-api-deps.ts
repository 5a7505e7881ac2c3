/**
 * Small in-memory stand-ins for the API's dependencies, for tests of the
 * HTTP layer without VMs: one running VM whose agent answers from memory
 * (exec results are scripted; files live in a Map and stream in chunks).
 * Test-only: only tests import it.
 */
import { VmNotFoundError, AgentError } from '../errors/index.js';
import type { ExecRequest, ExecResult } from '../guest/agent-client.js';
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
  readFileChunks(path: string): AsyncIterable<Buffer>;
  pause(): Promise<void>;
  resume(): Promise<void>;
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
    async *readFileChunks(path) {
      const data = vm.files.get(path);
      if (!data)
        throw new AgentError(`guest agent read_file failed (FILE_NOT_FOUND): ${path}: No such file or directory`, {
          details: { agent_code: 'FILE_NOT_FOUND', op: 'read_file' },
        });
      for (let at = 0; at < data.length; at += vm.chunkBytes) yield data.subarray(at, at + vm.chunkBytes);
    },
    async pause() {
      vm.state = 'paused';
    },
    async resume() {
      vm.state = 'running';
    },
  };
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
