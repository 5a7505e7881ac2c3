/**
 * Starting one Firecracker process: where its files live (the VM's run dir,
 * or a jail), its argv (plain, in a network namespace, or through the
 * jailer), the log and metrics sinks it writes to, its console, and the
 * wait for its API socket, bounded by a deadline and by the process exiting
 * first. Every resource registers its undo on the caller's cleanup stack as
 * it is made. Configuration over the API is not done here (config-steps.ts).
 */
import { rmSync } from 'node:fs';
import { checkSocketPaths, describeExit } from '../process-helpers.js';
import { VmmExitedError, VmmSpawnFailedError } from '../../errors/index.js';
import { findExecutable, spawnSupervised, type ExitInfo, type SupervisedChild } from '../../process/index.js';
import { reniceProcess, type VmmCommand, type VmmExec } from '../../launcher/index.js';
import type { CleanupStack } from '../../steps/index.js';
import { ConsoleTap } from '../console.js';
import type { VmLaunchSpec } from '../driver.js';
import { FirecrackerApiClient, waitForSocket } from './api-client.js';
import { FirecrackerApiTimeoutError } from './api-errors.js';
import { VMM_FILE_NAMES, jailFiles, runDirFiles, type VmmFiles } from './files.js';
import {
  buildJailerArgv,
  createJail,
  createSinkFile,
  firecrackerId,
  jailCgroupDirs,
  jailLayout,
  readMounts,
  removeJail,
  type JailerOptions,
} from './jailer.js';
import { netnsPath, type FirecrackerLaunchOptions } from './launch-options.js';
import { readLogTail } from './log-file.js';
import { MetricsReader, type MetricsSink } from './metrics.js';

/** Unix socket paths are limited to 107 bytes on Linux. */
export interface LaunchSettings {
  /** Absolute path of the Firecracker binary (the probe resolved it). */
  binary: string;
  /** Run through the jailer (binary resolved), or null. */
  jailer: JailerOptions | null;
  /** Per-request API timeout (config vmm.firecracker.api_timeout_ms). */
  apiTimeoutMs: number;
  /** How long to wait for the API socket after spawning. */
  spawnTimeoutMs: number;
  /** config vmm.firecracker.metrics_sink. */
  metricsSink: MetricsSink;
  /** Environment of the process (the jailer clears it anyway). Default: this process's. */
  env?: NodeJS.ProcessEnv;
  /**
   * How a plain Firecracker starts (vmm.nice, through tfc-vmm-exec). Not
   * applied to the jailer, which sets up the process itself (cgroups,
   * namespaces, uid) and execs Firecracker; absent: started as is.
   */
  exec?: VmmExec;
}

/** A running Firecracker whose API answers. */
export interface LaunchedVmm {
  /** The `--id` it was given. */
  id: string;
  child: SupervisedChild;
  api: FirecrackerApiClient;
  files: VmmFiles;
  consoleTap: ConsoleTap;
  metrics: MetricsReader;
  /** Host path of its log file. */
  logPath: string;
  /** Milliseconds from spawn until the API socket answered. */
  socketReadyMs: number;
}

export { describeExit };

function checkSocketPath(path: string): void {
  checkSocketPaths([path], 'choose a shorter data_dir (or vmm.firecracker.jailer.chroot_base_dir)');
}

/** argv[0] and the rest: Firecracker itself, in a network namespace (nsenter), or the jailer. */
function commandLine(spec: VmLaunchSpec, options: FirecrackerLaunchOptions, settings: LaunchSettings, files: VmmFiles, id: string): [string, string[]] {
  const apiArgs = ['--api-sock', files.vmmPath(VMM_FILE_NAMES.apiSocket)];
  if (settings.jailer) {
    return [settings.jailer.binary, buildJailerArgv(settings.jailer, { id, execFile: settings.binary, netns: options.netns, firecrackerArgs: apiArgs })];
  }
  const fcArgs = [...apiArgs, '--id', id];
  if (options.netns) {
    // nsenter execs Firecracker in place (same pid), unlike a fork-and-wait wrapper.
    const nsenter = findExecutable('nsenter');
    if (!nsenter) throw new VmmSpawnFailedError('running Firecracker in a network namespace needs nsenter (util-linux); install it or use the jailer');
    return [nsenter, [`--net=${netnsPath(options.netns)}`, '--', settings.binary, ...fcArgs]];
  }
  return [settings.binary, fcArgs];
}

/**
 * Prepares the files, spawns Firecracker (or the jailer) and waits until
 * its API answers. Throws VmmSpawnFailedError (cannot start, socket path
 * too long, jail exists, API silent past the deadline) or VmmExitedError
 * (exited during start-up), each with the console and log tail. Everything
 * made is registered on `cleanup`, also when this throws.
 */
export async function launchFirecracker(
  spec: VmLaunchSpec,
  options: FirecrackerLaunchOptions,
  settings: LaunchSettings,
  cleanup: CleanupStack,
): Promise<LaunchedVmm> {
  const id = firecrackerId(spec.vmId);
  let files: VmmFiles;
  if (settings.jailer) {
    const layout = jailLayout(settings.jailer, settings.binary, id);
    createJail(layout);
    const jailer = settings.jailer;
    cleanup.push(`remove jail ${layout.jailDir}`, () => {
      const left = removeJail(layout, jailCgroupDirs(jailer, layout.execName, id, readMounts()));
      if (left.length) throw new Error(`could not remove cgroup directories: ${left.join(', ')}`);
    });
    files = jailFiles(layout, { uid: jailer.uid, gid: jailer.gid });
  } else {
    files = runDirFiles(spec.runDir);
  }
  const apiSocket = files.hostPath(VMM_FILE_NAMES.apiSocket);
  for (const path of [apiSocket, files.hostPath(VMM_FILE_NAMES.vsock)]) checkSocketPath(path);

  const owner = files.jail?.owner;
  const logPath = files.hostPath(VMM_FILE_NAMES.log);
  const metricsPath = files.hostPath(VMM_FILE_NAMES.metrics[settings.metricsSink]);
  try {
    for (const [path, kind] of [
      [logPath, 'file'],
      [metricsPath, settings.metricsSink],
    ] as const) {
      rmSync(path, { force: true }); // left by an earlier process in this directory
      await createSinkFile(path, kind, owner);
    }
  } catch (err) {
    throw new VmmSpawnFailedError(`cannot create Firecracker's log or metrics file in ${files.home}: ${(err as Error).message}`, { cause: err });
  }
  // Opened before Firecracker starts: a FIFO then always has a reader.
  const metrics = await MetricsReader.open(metricsPath, settings.metricsSink);
  cleanup.push('close metrics reader', () => metrics.close());

  const [program, programArgs] = commandLine(spec, options, settings, files, id);
  const command: VmmCommand =
    settings.exec && !settings.jailer ? await settings.exec.command(program, programArgs) : { file: program, args: programArgs, reniceTo: null };
  const consoleTap = new ConsoleTap(spec.consoleLogPath, { ...(spec.consoleLogMaxBytes ? { logMaxBytes: spec.consoleLogMaxBytes } : {}) });
  const started = performance.now();
  let child: SupervisedChild;
  try {
    child = await spawnSupervised(command.file, command.args, { cwd: files.home, ...(settings.env ? { env: settings.env } : {}) });
    if (command.reniceTo !== null) reniceProcess(child.pid, command.reniceTo);
  } catch (err) {
    consoleTap.end('Firecracker did not start');
    throw err;
  }
  if (!files.jail) {
    cleanup.push('remove Firecracker sockets', () => {
      for (const name of [VMM_FILE_NAMES.apiSocket, VMM_FILE_NAMES.vsock]) rmSync(files.hostPath(name), { force: true });
    });
  }
  cleanup.push(`stop Firecracker pid ${child.pid}`, () => child.terminate(1000));
  consoleTap.attach(child.stdout!);
  consoleTap.attach(child.stderr!, 'firecracker: ');
  void child.wait().then((exit) => {
    const log = readLogTail(logPath, 8);
    consoleTap.end(`Firecracker exited (${describeExit(exit)})${log ? `; its log ends:\n${log}` : ''}`);
  });

  const exitedEarly = new AbortController();
  void child.wait().then((exit) => exitedEarly.abort(exit));
  try {
    await waitForSocket(apiSocket, { timeoutMs: settings.spawnTimeoutMs, signal: exitedEarly.signal });
  } catch (err) {
    if (exitedEarly.signal.aborted) {
      // Give the pipes a moment so the message carries Firecracker's own words.
      await new Promise((r) => setTimeout(r, 50));
      const exit = exitedEarly.signal.reason as ExitInfo;
      throw new VmmExitedError(`Firecracker exited during start-up (${describeExit(exit)}):\n${consoleTap.lastLines(10)}${tailOf(logPath)}`);
    }
    if (err instanceof FirecrackerApiTimeoutError) {
      throw new VmmSpawnFailedError(
        `Firecracker's API socket ${apiSocket} did not answer within ${settings.spawnTimeoutMs} ms:\n${consoleTap.lastLines(10)}${tailOf(logPath)}`,
        { cause: err },
      );
    }
    throw err;
  }
  const socketReadyMs = performance.now() - started;
  // Without the launcher: again, now that Firecracker has made its threads.
  if (command.reniceTo !== null) reniceProcess(child.pid, command.reniceTo);
  const api = new FirecrackerApiClient({ socketPath: apiSocket, timeoutMs: settings.apiTimeoutMs });
  cleanup.push('close Firecracker API client', () => api.close());
  return { id, child, api, files, consoleTap, metrics, logPath, socketReadyMs };
}

function tailOf(logPath: string): string {
  const tail = readLogTail(logPath, 8);
  return tail ? `\nFirecracker log:\n${tail}` : '';
}
