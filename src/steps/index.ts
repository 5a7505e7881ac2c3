/**
 * Ordered lists of named, timed steps (after firecracker-go-sdk's handler
 * lists): VM boot and restore, and the Firecracker configuration sequence.
 * Variants edit a list instead of adding flags inside steps. Depends on
 * nothing else in the project.
 */
export { StepList, type Step, type PhaseTiming } from './step-list.js';
