/**
 * Ordered lists of named, timed steps (after firecracker-go-sdk's handler
 * lists): VM boot and restore, and the Firecracker configuration sequence.
 * Variants edit a list instead of adding flags inside steps. Also the
 * cleanup stack those steps register their undos on (used by vm/, vmm/ and
 * net/ alike, which is why it lives here). Depends on nothing else in the
 * project.
 */
export { StepList, StepFailedError, type Step, type PhaseTiming } from './step-list.js';
export { CleanupStack, type CleanupFailure } from './cleanup-stack.js';
