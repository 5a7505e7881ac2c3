/**
 * Child processes: the only module that spawns anything. Argv arrays only,
 * never a shell string. Every long-lived child is supervised: it has a
 * memoised `wait()`, a `kill()`, and is killed when this Node process exits
 * (and, when it dies abruptly, through a root guard: util-linux `setpriv
 * --pdeathsig` around coreutils `timeout`, which forwards the signal even
 * after the program changed uid), so no VMM outlives its owner.
 *
 * This module knows nothing about VMs, images or the store.
 */
export { runCommand, type RunOptions, type RunResult } from './run.js';
export { spawnSupervised, liveChildren, ownerDeathMode, type OwnerDeathMode, type SupervisedChild, type SpawnOptions, type ExitInfo } from './supervise.js';
export { findExecutable } from './which.js';
export { processStartTime, isSameProcessAlive } from './identity.js';
export { netnsExecPrefix } from './netns.js';
