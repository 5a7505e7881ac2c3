import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processStartTime } from '../process/index.js';
import type { AgentClient, AgentHello } from '../guest/agent-client.js';
import { INIT_START_MARKER } from '../guest/init-script.js';
import { hasCode, VmBootTimeoutError, VmmExitedError } from '../errors/index.js';
import type { VmLaunchSpec, VmmDriver, VmmInstance } from '../vmm/driver.js';
import { CleanupStack, StepList, type Step } from '../steps/index.js';
import type { EgressPolicy, NetworkManager, VmNetwork } from '../net/index.js';
import { copyScratchDisk, createScratchDisk } from './disks.js';

export interface BootContext {
  spec: VmLaunchSpec;
  driver: VmmDriver;
  cleanup: CleanupStack;
  /** The VMM process's undos (spawn_vmm makes it; it runs as part of `cleanup`). */
  vmmCleanup?: CleanupStack;
  /** Absolute deadline (performance.now() based) for the whole boot. */
  deadline: number;
  /** Set for networked VMs: the manager that makes the VM's namespace, TAP, veth and rules. */
  network?: { manager: NetworkManager; policy?: EgressPolicy; preferSubnet?: string };
  /** The VM's network once the `network` step made it. */
  vmNetwork?: VmNetwork;
  /**
   * The VM's scratch disk (the `disk` step makes it): formatted at `path`
   * (cold boot), or copied there from `copyFrom` (a golden snapshot's disk).
   * `path` is also in spec.drives.
   */
  scratchDisk?: { path: string; sizeMib: number; copyFrom?: string };
  /** Called as soon as the VMM process exists, so its pid is recorded before the guest runs. */
  onSpawned?: (instance: VmmInstance) => void;
  /** A restore through a standby VMM (withStandby): the VMM, run dir and disk made ahead of time, adopted by `spawn_vmm`. */
  standby?: AdoptedVmm;
  instance?: VmmInstance;
  agent?: AgentClient;
  hello?: AgentHello;
}

/**
 * What a standby VMM (src/vm/standby.ts) made ahead of a restore by running
 * standbySteps: its launch spec, the waiting VMM, and the undos, which the
 * VM that adopts it takes over.
 */
export interface AdoptedVmm {
  /** The spec the VMM was spawned with (the VM's id, run dir and console log are the standby's). */
  spec: VmLaunchSpec;
  instance: VmmInstance;
  /** Everything the standby made (run dir, disk copy, then the VMM: `vmmCleanup` runs as part of it). */
  cleanup: CleanupStack;
  /** The VMM's own undos (BootContext.vmmCleanup). */
  vmmCleanup: CleanupStack;
}

function remaining(ctx: BootContext, what: string): number {
  const ms = Math.floor(ctx.deadline - performance.now());
  if (ms <= 0) throw new VmBootTimeoutError(`boot timed out before ${what}; raise the profile's boot_timeout_ms`);
  return ms;
}

/** File in a run dir naming the tfc process that owns it (a standby VMM's dir has no store row: reconciliation reads this). */
export const RUN_DIR_OWNER_FILE = 'owner.json';

/** Records this process as the owner of `runDir` ({pid, start}), so start-up reconciliation of another tfc process leaves it alone. */
export function writeRunDirOwner(runDir: string): void {
  writeFileSync(join(runDir, RUN_DIR_OWNER_FILE), JSON.stringify({ pid: process.pid, start: processStartTime(process.pid) }), { mode: 0o600 });
}

const prepare: Step<BootContext> = {
  name: 'prepare',
  async run(ctx) {
    mkdirSync(ctx.spec.runDir, { recursive: true, mode: 0o700 });
    ctx.cleanup.push(`remove ${ctx.spec.runDir}`, () => rmSync(ctx.spec.runDir, { recursive: true, force: true }));
    writeRunDirOwner(ctx.spec.runDir);
  },
};

/** Networked VMs only: namespace, TAP, veth, NAT and egress rules, removed when the VM goes. */
const setupNetwork: Step<BootContext> = {
  name: 'network',
  async run(ctx) {
    const { manager, policy, preferSubnet } = ctx.network!;
    const net = await manager.create(ctx.spec.vmId, policy, preferSubnet ? { preferSubnet } : {});
    // Registered before the VMM's undo, so it runs after the VMM has exited.
    ctx.cleanup.push(`remove network of ${ctx.spec.vmId}`, () => manager.destroy(ctx.spec.vmId));
    ctx.vmNetwork = net;
    ctx.spec.network = { netns: net.netns, tapName: net.tapName, guestMac: net.guestMac };
  },
};

/** Edits a boot or restore list for a networked VM: `network` right after `prepare`. */
export function withNetwork(steps: StepList<BootContext>): StepList<BootContext> {
  return steps.insertAfter('prepare', setupNetwork);
}

/** VMs with a scratch disk only: a fresh ext4 file (cold boot) or a sparse copy of the snapshot's (restore). */
const makeScratchDisk: Step<BootContext> = {
  name: 'disk',
  async run(ctx) {
    const disk = ctx.scratchDisk!;
    // Registered before the file exists: a half-written copy goes too.
    ctx.cleanup.push(`remove ${disk.path}`, () => rmSync(disk.path, { force: true }));
    if (disk.copyFrom) await copyScratchDisk(disk.copyFrom, disk.path);
    else await createScratchDisk(disk.path, disk.sizeMib);
  },
};

/** Edits a boot or restore list for a VM with a scratch disk: `disk` right after `prepare`. */
export function withScratchDisk(steps: StepList<BootContext>): StepList<BootContext> {
  return steps.insertAfter('prepare', makeScratchDisk);
}

const spawnVmm: Step<BootContext> = {
  name: 'spawn_vmm',
  async run(ctx) {
    // The VMM's own undos on a stack of their own (run with the VM's, in
    // order): a rollback replaces the VMM and must release just these (the
    // old jail, sockets, uid lease) before it spawns the next one.
    const vmm = new CleanupStack();
    ctx.cleanup.push('stop the VMM and remove its files', () => vmm.run());
    ctx.vmmCleanup = vmm;
    ctx.instance = await ctx.driver.spawn(ctx.spec, vmm);
    ctx.onSpawned?.(ctx.instance);
  },
};

/**
 * Restore through a standby (withStandby): the VM takes over the VMM that
 * standbySteps spawned ahead of time, and its run dir and disk. Named
 * `spawn_vmm` so restore phase tables stay comparable: its time is what the
 * spawn costs on the request path (about nothing).
 */
const adoptVmm: Step<BootContext> = {
  name: 'spawn_vmm',
  async run(ctx) {
    const standby = ctx.standby!;
    // One undo for all the standby made: VMM first, then disk and run dir (its own order).
    ctx.cleanup.push('stop the standby VMM and remove its files', () => standby.cleanup.run());
    ctx.vmmCleanup = standby.vmmCleanup;
    ctx.instance = standby.instance;
    if (standby.instance.exited)
      throw new VmmExitedError(`the standby VMM exited before it was used; last console lines:\n${standby.instance.consoleTail(15)}`);
    ctx.onSpawned?.(standby.instance);
  },
};

const configure: Step<BootContext> = {
  name: 'configure',
  async run(ctx) {
    await ctx.instance!.configure();
  },
};

const start: Step<BootContext> = {
  name: 'start',
  async run(ctx) {
    await ctx.instance!.start();
  },
};

/** From "guest runs" until /init prints its first line: kernel decompression-free boot plus initramfs unpack. */
const kernel: Step<BootContext> = {
  name: 'kernel',
  async run(ctx) {
    await ctx.instance!.waitForConsole(new RegExp(`^${INIT_START_MARKER}`), remaining(ctx, 'the guest init started'));
  },
};

/** From init start until the agent answers hello: module loading, agent start, channel up. */
const agentReady: Step<BootContext> = {
  name: 'agent_ready',
  async run(ctx) {
    const timeoutMs = remaining(ctx, 'the agent answered');
    const agent = await ctx.instance!.connectAgent({ timeoutMs });
    ctx.cleanup.push('close agent connection', () => agent.close());
    ctx.agent = agent;
    // hello waits until the guest opens its end of the channel, so it races the VMM exiting.
    let settled = false;
    const exited = ctx.instance!.wait().then(() => {
      if (!settled) throw new VmmExitedError(`the VMM exited before the guest agent answered; last console lines:\n${ctx.instance!.consoleTail(15)}`);
    });
    exited.catch(() => undefined);
    try {
      const hello = agent.hello({ timeoutMs: remaining(ctx, 'the agent answered') });
      ctx.hello = await Promise.race([hello, exited.then(() => hello)]);
    } catch (err) {
      // A guest that dies at boot (init gave up: a disk that does not mount)
      // closes the channel as its VMM exits: say so, with the console's reason.
      if (hasCode(err, 'AGENT_DISCONNECTED') && (await exitedWithin(ctx.instance!, 1000))) {
        throw new VmmExitedError(`the VMM exited before the guest agent answered; last console lines:\n${ctx.instance!.consoleTail(15)}`, { cause: err });
      }
      if (hasCode(err, 'AGENT_TIMEOUT')) {
        throw new VmBootTimeoutError(`the guest agent did not answer within the boot timeout; last console lines:\n${ctx.instance!.consoleTail(15)}`, {
          cause: err,
        });
      }
      throw err;
    } finally {
      settled = true;
    }
  },
};

/** True when the VMM has exited or exits within `ms`. */
async function exitedWithin(instance: VmmInstance, ms: number): Promise<boolean> {
  if (instance.exited) return true;
  let timer: NodeJS.Timeout | undefined;
  const exited = await Promise.race([instance.wait().then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return exited;
}

/** Restore only: load the snapshot named by spec.restoreFrom into the fresh VMM (replaces `configure`). */
const loadSnapshot: Step<BootContext> = {
  name: 'load_snapshot',
  async run(ctx) {
    await ctx.instance!.loadSnapshot();
  },
};

/** Restore only: let the restored guest run (replaces `start`). */
const resume: Step<BootContext> = {
  name: 'resume',
  async run(ctx) {
    await ctx.instance!.resume();
  },
};

/**
 * Restore only: clones wake with the template's clock and random state.
 * Give each its own: wall-clock time now, and fresh entropy.
 */
const refreshGuest: Step<BootContext> = {
  name: 'refresh_guest',
  async run(ctx) {
    await ctx.agent!.setClock(Date.now(), { timeoutMs: remaining(ctx, 'the guest clock was set') });
    await ctx.agent!.addEntropy(randomBytes(64), { timeoutMs: remaining(ctx, 'entropy was added') });
  },
};

/** The cold boot: prepare, spawn_vmm, configure, start, kernel, agent_ready. */
export function coldBootSteps(): StepList<BootContext> {
  return new StepList([prepare, spawnVmm, configure, start, kernel, agentReady]);
}

/**
 * Restore from a snapshot: the cold boot list, edited. No kernel boots;
 * the snapshot is loaded instead of configuring, the VM is resumed instead
 * of started, and the guest gets a fresh clock and entropy once the agent
 * answers: prepare, spawn_vmm, load_snapshot, resume, agent_ready, refresh_guest.
 */
export function restoreSteps(): StepList<BootContext> {
  return coldBootSteps().replace('configure', loadSnapshot).replace('start', resume).remove('kernel').insertAfter('agent_ready', refreshGuest);
}

/**
 * The part of a restore a standby VMM does ahead of time, before any
 * request (src/vm/standby.ts): prepare, spawn_vmm (plus `disk` through
 * withScratchDisk). The VMM then waits for its snapshot.
 */
export function standbySteps(): StepList<BootContext> {
  return new StepList([prepare, spawnVmm]);
}

/**
 * Edits a restore list for a VM that adopts a standby VMM (ctx.standby):
 * no `prepare` (the run dir exists), and `spawn_vmm` takes the waiting VMM
 * over: spawn_vmm, load_snapshot, resume, agent_ready, refresh_guest. Not
 * combined with withScratchDisk (the standby copied the disk) or
 * withNetwork (standbys serve VMs without a network).
 */
export function withStandby(steps: StepList<BootContext>): StepList<BootContext> {
  return steps.remove('prepare').replace('spawn_vmm', adoptVmm);
}
