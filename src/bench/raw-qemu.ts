/**
 * The orchestrator's cost, measured from below: the QEMU command line `tfc`
 * runs for a cold boot of a profile, built by the driver's own argv builder
 * from the spec `tfc` would make, started directly (no `-S`, no QMP, no
 * console log, no store) and timed until the guest's init prints its marker
 * on the serial console, then until the agent answers hello. Compare it with
 * `tfc`'s phases of a cold boot in the same run (bench/limits.ts), and its
 * command line with the one `tfc` ran (commandLineDifferences).
 *
 * Starts one QEMU per call and always stops it, releases its uid lease and
 * removes its run dir, whatever happens.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VmProfile } from '../vm/index.js';
import { kernelArgsFor } from '../vm/vm-service.js';
import { launchDrives } from '../vm/disks.js';
import { connectUnix } from '../guest/agent-client.js';
import { INIT_START_MARKER } from '../guest/init-script.js';
import { spawnSupervised } from '../process/index.js';
import { QEMU_SANDBOX, vmmPrivilegeFrom } from '../security/index.js';
import { CONSOLE_MAX_LINE_BYTES, LineSplitter } from '../vmm/console.js';
import type { VmLaunchSpec } from '../vmm/driver.js';
import { buildQemuArgv, type QemuConfinement } from '../vmm/qemu/argv.js';
import { VmmExec, reniceProcess, vmmCacheDir, vmmExecSettingsFrom } from '../launcher/index.js';
import { QmpClient } from '../vmm/qemu/qmp-client.js';
import type { BenchEnv } from './common.js';

/** Why the raw comparison cannot run for this profile, or null when it can. */
export function rawBootUnsupported(profile: Pick<VmProfile, 'driver' | 'network' | 'diskMib'>): string | null {
  if (profile.driver !== 'qemu') return `the default profile uses the ${profile.driver} driver (the raw comparison runs QEMU)`;
  if (profile.network?.enabled) return 'the default profile is networked (a raw QEMU would need its namespace and TAP)';
  if ((profile.diskMib ?? 0) > 0) return 'the default profile has a scratch disk (a raw QEMU would need it made first)';
  return null;
}

/**
 * The argv without the prelaunch stop (`-S`), so the guest runs as soon as
 * QEMU has started, as a hand-written command line would. Everything else
 * is kept as is.
 */
export function withoutPrelaunchStop(argv: readonly string[]): string[] {
  return argv.filter((a) => a !== '-S');
}

/**
 * `argv` with what differs between any two VMs replaced by placeholders:
 * the run dir (`<run>`), the VM id (`<id>`) and the uid after -runas (`<uid>`).
 */
export function normalizeCommandLine(argv: readonly string[], vm: { runDir: string; vmId: string }): string[] {
  return argv.map((a, i) => (argv[i - 1] === '-runas' ? '<uid>' : a.split(vm.runDir).join('<run>').split(vm.vmId).join('<id>')));
}

/**
 * How the raw command line differs from `tfc`'s (both normalized), apart
 * from the `-S` the raw one drops: "-ARG" only in tfc's, "+ARG" only in the
 * raw one, or a note when only the order differs. Empty when they agree.
 */
export function commandLineDifferences(tfc: readonly string[], raw: readonly string[]): string[] {
  const expected = tfc.filter((a) => a !== '-S');
  if (expected.length === raw.length && expected.every((a, i) => a === raw[i])) return [];
  const remaining = [...raw];
  const onlyTfc: string[] = [];
  for (const a of expected) {
    const i = remaining.indexOf(a);
    if (i >= 0) remaining.splice(i, 1);
    else onlyTfc.push(`-${a}`);
  }
  const out = [...onlyTfc, ...remaining.map((a) => `+${a}`)];
  return out.length > 0 ? out : ['same arguments in another order'];
}

export interface RawBootTiming {
  /** From spawning QEMU until the init marker line appeared on the console. */
  toMarkerMs: number;
  /** From spawning QEMU until the guest agent answered hello. */
  toAgentMs: number;
  /** With `prelaunchStop`: from spawning QEMU until its QMP answered `cont` (QEMU's own start-up, as tfc sees it). */
  toRunningMs?: number;
  /** The program and arguments run, normalized (normalizeCommandLine). */
  commandLine: string[];
}

/**
 * One raw cold boot of `profile` (see rawBootUnsupported for what it
 * refuses). Runs QEMU with the same privilege model as `tfc` (a leased uid,
 * -sandbox and -runas when security.drop_privileges applies). Without
 * `prelaunchStop` the guest runs from the start; with it, the command line
 * keeps `-S` and the guest is continued through QMP as soon as QMP answers
 * (tfc's own sequence, without the rest of tfc). Throws when QEMU exits or
 * the guest does not get there within `timeoutMs`.
 */
export async function rawColdBoot(env: BenchEnv, profile: VmProfile, options: { timeoutMs?: number; prelaunchStop?: boolean } = {}): Promise<RawBootTiming> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const unsupported = rawBootUnsupported(profile);
  if (unsupported) throw new Error(unsupported);
  const driver = env.service.driver(profile.driver);
  const info = await driver.probe();
  const image = env.service.image(profile.image);
  const id = `bench-raw-${randomBytes(6).toString('hex')}`;
  const runDir = mkdtempSync(join(tmpdir(), 'tfc-raw-'));
  const lease = vmmPrivilegeFrom(env.config)?.leases.acquire(id);
  let stop: (() => Promise<void>) | undefined;
  try {
    const spec: VmLaunchSpec = {
      vmId: id,
      runDir,
      consoleLogPath: join(runDir, 'console.log'),
      kernelPath: image.kernelPath,
      initrdPath: image.initrdPath,
      kernelArgs: kernelArgsFor(driver, profile, image),
      vcpus: profile.vcpus,
      memoryMib: profile.memoryMib,
      ...(image.rootfsPath ? { drives: launchDrives(image.rootfsPath, undefined) } : {}),
    };
    let confinement: QemuConfinement | null = null;
    if (lease) {
      chownSync(runDir, lease.uid, lease.gid);
      chmodSync(runDir, 0o700);
      confinement = { uid: lease.uid, gid: lease.gid, sandbox: QEMU_SANDBOX };
    }
    const sockets = { qmp: join(runDir, 'qmp.sock'), agent: join(runDir, 'agent.sock') };
    // The host-side tuning tfc's driver passes, from the same config.
    const tuning = { tcgTbSizeMib: env.config.vmm.qemu.tcgTbSizeMib, memMerge: env.config.vmm.qemu.memMerge };
    const full = buildQemuArgv(spec, info.accel, sockets, confinement, tuning);
    const argv = options.prelaunchStop ? full : withoutPrelaunchStop(full);
    const started = performance.now();
    // QEMU itself, no guard process in between (that is part of what tfc adds);
    // the process module still kills it if this process exits. It starts
    // with the same process attributes as tfc's (vmm.nice, vmm.qemu.thp,
    // through the same launcher), so the two sides differ only in tfc's work.
    const exec = new VmmExec(vmmExecSettingsFrom(env.config).qemu, vmmCacheDir(env.config.dataDir));
    const cmd = await exec.command(info.binary, argv);
    const child = await spawnSupervised(cmd.file, cmd.args, { cwd: runDir, dieWithParent: false });
    if (cmd.reniceTo !== null) reniceProcess(child.pid, cmd.reniceTo);
    stop = async () => {
      child.kill('SIGKILL');
      await child.wait();
    };
    const stderrTail: string[] = [];
    child.stderr!.on('data', (chunk: Buffer) => {
      stderrTail.push(chunk.toString('utf8'));
      if (stderrTail.length > 20) stderrTail.shift();
    });
    const marker = new Promise<number>((resolve) => {
      const splitter = new LineSplitter(CONSOLE_MAX_LINE_BYTES, (line) => {
        if (line.startsWith(INIT_START_MARKER)) resolve(performance.now() - started);
      });
      // Keep reading after the marker: a full pipe would stall the guest's console.
      child.stdout!.on('data', (chunk: Buffer) => splitter.push(chunk));
    });
    let timer: NodeJS.Timeout | undefined;
    const failed = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`raw QEMU: no init marker within ${timeoutMs} ms`)), timeoutMs);
      void child.wait().then((exit) => reject(new Error(`raw QEMU exited (code ${exit.code}, signal ${exit.signal}): ${stderrTail.join('').slice(-500)}`)));
    });
    failed.catch(() => undefined);
    let toRunningMs: number | undefined;
    try {
      if (options.prelaunchStop) {
        const qmp = await Promise.race([QmpClient.connect(sockets.qmp, { timeoutMs }), failed]);
        try {
          await Promise.race([qmp.execute('cont'), failed]);
          toRunningMs = performance.now() - started;
        } finally {
          qmp.close();
        }
      }
      const toMarkerMs = await Promise.race([marker, failed]);
      const agent = await Promise.race([connectUnix(sockets.agent, { timeoutMs }), failed]);
      try {
        await Promise.race([agent.hello({ timeoutMs }), failed]);
      } finally {
        agent.close();
      }
      return {
        toMarkerMs,
        toAgentMs: performance.now() - started,
        ...(toRunningMs !== undefined ? { toRunningMs } : {}),
        commandLine: normalizeCommandLine([info.binary, ...argv], { runDir, vmId: id }),
      };
    } finally {
      clearTimeout(timer);
    }
  } finally {
    await stop?.();
    lease?.release();
    rmSync(runDir, { recursive: true, force: true });
  }
}
