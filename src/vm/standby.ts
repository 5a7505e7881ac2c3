/**
 * Standby VMMs: VMM processes started ahead of time for the restores of one
 * golden snapshot and left waiting for it (QEMU listening for its incoming
 * state, the snapshot's memory file mapped privately; Firecracker waiting
 * for `PUT /snapshot/load`), so a
 * restore is load + resume + agent instead of spawn + load + resume + agent
 * (docs/snapshots.md#standby-vmms). Owned by VmService, which decides when
 * standbys are wanted and hands a taken one to Vm.restore; this module
 * knows nothing of profiles, pools, networks or the store. Everything a
 * standby holds (process, sockets, run dir, disk copy, uid lease) is on its
 * own cleanup stack, which the VM that adopts it takes over.
 */
import { createHash } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import type { ExitInfo } from '../process/index.js';
import { CleanupStack, StepFailedError } from '../steps/index.js';
import type { SnapshotFiles } from '../vmm/driver.js';
import { standbySteps, withScratchDisk, type AdoptedVmm } from './boot-steps.js';
import { bootContextFor, type VmBootOptions } from './vm.js';

/** The most standbys one snapshot may keep (profiles.X.standby_vmms is 0..8). */
export const MAX_STANDBY_VMMS = 8;

export interface StandbyVmmsOptions {
  /** A snapshot's standbys stop when no restore of it came for this long. Default 600000 (10 minutes). */
  idleMs?: number;
  /** At most this many snapshots keep standbys; the one restored longest ago gives way. Default 8. */
  maxSnapshots?: number;
  /** Wait after a standby failed to start or died; doubles with each failure in a row, up to 60 s. Default 1000. */
  retryMs?: number;
  /** Told why a standby could not be made or died (the caller logs it). */
  onProblem?: (message: string) => void;
}

/** Boot options of one standby (a fresh id, run dir and console log) and the snapshot it waits for. */
export type StandbyBootOptions = VmBootOptions & { snapshot: SnapshotFiles };

/** A VMM started and waiting for its snapshot. Give it to Vm.restore as `standby`, with its options' id, run dir, console log and disk. */
export interface StandbyVmm extends AdoptedVmm {
  readonly options: StandbyBootOptions;
  /** Identity (device, inode, size, mtime) of the snapshot files when the VMM was started. */
  readonly identity: string;
  /** How long making it took (prepare, disk, spawn_vmm), ms. */
  readonly madeMs: number;
}

/** One snapshot's standbys, for `tfc` status output and tests. */
export interface StandbyStatus {
  /** First 16 hex digits of the key (standbyKey). */
  key: string;
  /** The snapshot's memory file. */
  snapshot: string;
  wanted: number;
  ready: number;
  /** Process ids of the waiting VMMs. */
  pids: number[];
  /** A standby of this snapshot is being started now. */
  starting: boolean;
  /** Standbys that failed to start or died since one was last used. */
  failuresInARow: number;
  lastError?: string;
  /** How long the last standby took to start, ms. */
  lastMadeMs?: number;
}

interface Entry {
  key: string;
  snapshot: string;
  wanted: number;
  make: () => StandbyBootOptions;
  ready: StandbyVmm[];
  filling?: Promise<void>;
  starting: boolean;
  lastAsked: number;
  failures: number;
  lastError?: string;
  lastMadeMs?: number;
}

const MAX_RETRY_MS = 60_000;

/**
 * What a VM restored from `options` would be spawned with, minus what is
 * its own (id, run dir, console log; its disk is named relative to its run
 * dir): VMs with equal keys can use each other's standbys. Hex SHA-256.
 */
export function standbyKey(options: StandbyBootOptions): string {
  const { spec } = bootContextFor(options, new CleanupStack());
  const own = (path: string) => (path.startsWith(`${spec.runDir}/`) ? `<run dir>/${relative(spec.runDir, path)}` : path);
  const shape = {
    driver: options.driver.name,
    ...spec,
    vmId: undefined,
    runDir: undefined,
    consoleLogPath: undefined,
    drives: spec.drives?.map((d) => ({ ...d, path: own(d.path) })),
    scratchMib: options.scratchDisk?.sizeMib ?? 0,
  };
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex');
}

/** Device, inode, size and mtime of the snapshot's files ("missing" when one is gone): a snapshot made again at the same paths differs. */
export function snapshotIdentity(files: SnapshotFiles): string {
  try {
    return [files.memoryPath, files.statePath, files.scratchDiskPath]
      .filter((p): p is string => p !== undefined)
      .map((p) => {
        const st = statSync(p);
        return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
      })
      .join('|');
  } catch {
    return 'missing';
  }
}

/**
 * Keeps up to `wanted` standby VMMs per key (one golden snapshot restored
 * with one launch spec). `want` is called after each restore of a key and
 * refills in the background: one standby started at a time over all keys,
 * never more than wanted; a standby that dies is dropped and replaced
 * (after a pause that grows with failures in a row). `take` hands one out.
 * `close` stops them all and waits until everything they held is released.
 */
export class StandbyVmms {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Set<string>();
  private readonly discarding = new Set<Promise<void>>();
  private readonly stopWaits = new AbortController();
  private turn: Promise<unknown> = Promise.resolve();
  private sweeper?: NodeJS.Timeout;
  private closing?: Promise<void>;

  constructor(private readonly options: StandbyVmmsOptions = {}) {}

  private get idleMs(): number {
    return this.options.idleMs ?? 600_000;
  }

  /**
   * A waiting standby of `key` whose VMM is alive and whose snapshot files
   * are still the ones it was started on, or undefined. The caller owns it
   * from here: it must pass it to Vm.restore, or run its `cleanup`. Never
   * throws.
   */
  take(key: string): StandbyVmm | undefined {
    const entry = this.entries.get(key);
    if (!entry || this.closing) return undefined;
    entry.lastAsked = Date.now();
    while (entry.ready.length > 0) {
      const standby = entry.ready.shift()!;
      if (!standby.instance.exited && snapshotIdentity(standby.options.snapshot) === standby.identity) {
        entry.failures = 0;
        return standby;
      }
      void this.discard(standby, { keepLog: standby.instance.exited });
    }
    return undefined;
  }

  /**
   * Asks for `count` (0..8) standbys of `key`, made by `make` (boot options
   * with a fresh id each call), and starts making the missing ones in the
   * background. 0 stops the key's standbys. Marks the key used (idle
   * expiry). A no-op once closing. Never throws.
   */
  want(key: string, count: number, make: () => StandbyBootOptions, snapshot: SnapshotFiles): void {
    if (this.closing) return;
    let entry = this.entries.get(key);
    const wanted = Math.max(0, Math.min(MAX_STANDBY_VMMS, Math.floor(count)));
    if (wanted === 0) {
      if (entry) this.drop(entry);
      return;
    }
    if (!entry) {
      this.evictFor();
      entry = { key, snapshot: snapshot.memoryPath, wanted, make, ready: [], starting: false, lastAsked: Date.now(), failures: 0 };
      this.entries.set(key, entry);
      this.startSweeper();
    }
    entry.wanted = wanted;
    entry.make = make;
    entry.lastAsked = Date.now();
    for (const extra of entry.ready.splice(wanted)) void this.discard(extra);
    this.fill(entry);
  }

  /** Whether `vmId` is the id of a standby kept or being started here (its console log is in use). */
  owns(vmId: string): boolean {
    return this.inFlight.has(vmId) || [...this.entries.values()].some((e) => e.ready.some((s) => s.options.id === vmId));
  }

  status(): StandbyStatus[] {
    return [...this.entries.values()].map((e) => ({
      key: e.key.slice(0, 16),
      snapshot: e.snapshot,
      wanted: e.wanted,
      ready: e.ready.length,
      pids: e.ready.map((s) => s.instance.pid),
      starting: e.starting,
      failuresInARow: e.failures,
      ...(e.lastError ? { lastError: e.lastError } : {}),
      ...(e.lastMadeMs !== undefined ? { lastMadeMs: e.lastMadeMs } : {}),
    }));
  }

  /**
   * Stops every standby and every refill; resolves when their processes,
   * sockets, run dirs and leases are released (a standby being started is
   * finished first, then stopped). Later `want`s do nothing and `take`
   * returns nothing. Safe to call twice; never throws.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.sweeper);
      this.stopWaits.abort();
      const fills = [...this.entries.values()].map((e) => e.filling);
      for (const entry of [...this.entries.values()]) this.drop(entry);
      await Promise.allSettled(fills);
      await Promise.allSettled([...this.discarding]);
    })();
    return this.closing;
  }

  private current(entry: Entry): boolean {
    return !this.closing && this.entries.get(entry.key) === entry;
  }

  private fill(entry: Entry): void {
    if (entry.filling || !this.current(entry)) return;
    entry.filling = this.fillLoop(entry).finally(() => (entry.filling = undefined));
  }

  private async fillLoop(entry: Entry): Promise<void> {
    while (this.current(entry) && entry.ready.length < entry.wanted) {
      if (entry.failures > 0) {
        const waitMs = Math.min(MAX_RETRY_MS, (this.options.retryMs ?? 1000) * 2 ** (entry.failures - 1));
        if (!(await this.pause(waitMs)) || !this.current(entry)) return;
      }
      let standby: StandbyVmm;
      try {
        standby = await this.serially(() => this.make(entry));
      } catch (err) {
        entry.failures++;
        entry.lastError = `a standby VMM for snapshot ${entry.snapshot} could not be started: ${err instanceof Error ? err.message : String(err)}`;
        if (this.current(entry)) this.options.onProblem?.(entry.lastError);
        continue;
      }
      if (!this.current(entry) || entry.ready.length >= entry.wanted) {
        await this.discard(standby);
        return;
      }
      entry.ready.push(standby);
      this.watch(entry, standby);
    }
  }

  /** One standby at a time over all keys: starting a VMM is CPU-heavy, and restores run meanwhile. */
  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  private async make(entry: Entry): Promise<StandbyVmm> {
    if (!this.current(entry)) throw new Error('no longer wanted');
    const options = entry.make();
    // Read before the VMM opens the files: a snapshot replaced meanwhile then fails the check in take.
    const identity = snapshotIdentity(options.snapshot);
    const cleanup = new CleanupStack();
    const ctx = bootContextFor(options, cleanup);
    const steps = options.scratchDisk ? withScratchDisk(standbySteps()) : standbySteps();
    const started = performance.now();
    entry.starting = true;
    this.inFlight.add(options.id);
    try {
      await steps.run(ctx);
    } catch (thrown) {
      await cleanup.run();
      throw thrown instanceof StepFailedError ? thrown.cause : thrown;
    } finally {
      entry.starting = false;
      this.inFlight.delete(options.id);
    }
    entry.lastMadeMs = Math.round(performance.now() - started);
    return { spec: ctx.spec, instance: ctx.instance!, cleanup, vmmCleanup: ctx.vmmCleanup!, options, identity, madeMs: entry.lastMadeMs };
  }

  /** A standby whose VMM exits while waiting is dropped (its console log kept) and replaced. */
  private watch(entry: Entry, standby: StandbyVmm): void {
    void standby.instance.wait().then((exit: ExitInfo) => {
      const i = entry.ready.indexOf(standby);
      if (i < 0) return; // taken, or stopped on purpose
      entry.ready.splice(i, 1);
      entry.failures++;
      const how = exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
      entry.lastError = `standby VMM ${standby.options.id} exited while waiting (${how}); console log ${standby.options.consoleLogPath}`;
      this.options.onProblem?.(entry.lastError);
      void this.discard(standby, { keepLog: true });
      this.fill(entry);
    });
  }

  /** Stops a standby and removes what it made; its console log too unless `keepLog` (it never became a VM). */
  private discard(standby: StandbyVmm, how: { keepLog?: boolean } = {}): Promise<void> {
    const done = (async () => {
      await standby.cleanup.run();
      if (!how.keepLog) {
        rmSync(standby.options.consoleLogPath, { force: true });
        rmSync(`${standby.options.consoleLogPath}.1`, { force: true });
      }
    })();
    this.discarding.add(done);
    void done.finally(() => this.discarding.delete(done));
    return done;
  }

  private drop(entry: Entry): void {
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
    for (const standby of entry.ready.splice(0)) void this.discard(standby);
    if (this.entries.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Makes room for one more key: the one restored longest ago goes. */
  private evictFor(): void {
    const max = this.options.maxSnapshots ?? 8;
    while (this.entries.size >= max) {
      const oldest = [...this.entries.values()].reduce((a, b) => (b.lastAsked < a.lastAsked ? b : a));
      this.drop(oldest);
    }
  }

  /**
   * Every so often: keys no restore asked for within idleMs stop their
   * standbys; a standby whose snapshot was made again or removed (it maps
   * the old memory file) is stopped and replaced.
   */
  private startSweeper(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), Math.max(10, Math.min(this.idleMs, 30_000)));
    this.sweeper.unref();
  }

  private sweep(): void {
    const now = Date.now();
    for (const entry of [...this.entries.values()]) {
      if (now - entry.lastAsked > this.idleMs) {
        this.drop(entry);
        continue;
      }
      const stale = entry.ready.filter((s) => snapshotIdentity(s.options.snapshot) !== s.identity);
      if (stale.length === 0) continue;
      entry.ready = entry.ready.filter((s) => !stale.includes(s));
      for (const s of stale) void this.discard(s);
      this.fill(entry);
    }
  }

  /** Resolves true after `ms`, or false at once when closing. */
  private pause(ms: number): Promise<boolean> {
    const signal = this.stopWaits.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
