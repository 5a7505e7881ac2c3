import { InvalidStateError } from '../errors/index.js';

export const VM_STATES = ['creating', 'booting', 'running', 'paused', 'stopping', 'stopped', 'failed'] as const;
export type VmState = (typeof VM_STATES)[number];

/**
 * Allowed transitions. `failed` -> `stopping`/`stopped` exist for records
 * (reconciliation marks a dead owner's VMs stopped); a live `Vm` that
 * failed stays `failed` while `stop()` releases what it holds.
 */
const TRANSITIONS: Record<VmState, readonly VmState[]> = {
  creating: ['booting', 'stopping', 'failed'],
  booting: ['running', 'stopping', 'failed'],
  running: ['paused', 'stopping', 'failed'],
  paused: ['running', 'stopping', 'failed'],
  stopping: ['stopped', 'failed'],
  stopped: [],
  failed: ['stopping', 'stopped'],
};

export type TransitionListener = (from: VmState, to: VmState, reason?: string) => void;

/** The VM lifecycle as an explicit state machine; every change goes through `transition`. */
export class VmStateMachine {
  private current: VmState;

  constructor(
    private readonly vmId: string,
    initial: VmState,
    private readonly onTransition: TransitionListener = () => undefined,
  ) {
    this.current = initial;
  }

  get state(): VmState {
    return this.current;
  }

  canTransition(to: VmState): boolean {
    return TRANSITIONS[this.current].includes(to);
  }

  /**
   * Moves to `to`; throws InvalidStateError naming the current state if not
   * allowed. The state changes before the listener runs, so when the
   * listener (the store) throws, the machine still reflects what happened
   * and the caller decides how to report the unrecorded change.
   */
  transition(to: VmState, reason?: string): void {
    if (!this.canTransition(to)) {
      throw new InvalidStateError(`VM ${this.vmId} cannot go from ${this.current} to ${to}`, {
        details: { vm_id: this.vmId, state: this.current, target: to },
      });
    }
    const from = this.current;
    this.current = to;
    this.onTransition(from, to, reason);
  }

  /** Throws InvalidStateError unless the VM is in one of `allowed` (for operations like exec or pause). */
  require(operation: string, allowed: readonly VmState[]): void {
    if (!allowed.includes(this.current)) {
      throw new InvalidStateError(`cannot ${operation} VM ${this.vmId}: it is ${this.current} (${operation} needs ${allowed.join(' or ')})`, {
        details: { vm_id: this.vmId, state: this.current, allowed },
      });
    }
  }
}
