/**
 * VM lifecycle: the state machine, boot as an ordered list of named, timed
 * steps (restore will be an edited list), the Vm object and the service that
 * creates and tracks VMs. Uses drivers only through the VmmDriver interface;
 * never imports HTTP or CLI code.
 */
export { Vm, type VmBootOptions } from './vm.js';
export { VmService, type VmProfile, type CreateVmRequest, type VmServiceOptions } from './vm-service.js';
export { VmStateMachine, VM_STATES, type VmState } from './state-machine.js';
export { StepList, type Step, type PhaseTiming } from '../steps/index.js';
export { coldBootSteps, restoreSteps, type BootContext } from './boot-steps.js';
