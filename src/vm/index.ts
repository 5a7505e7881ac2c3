/**
 * VM lifecycle: the state machine, boot as an ordered list of named, timed
 * steps (restore is an edited list), the Vm object, the service that
 * creates and tracks VMs, and the standby VMMs it keeps waiting for
 * restores. Uses drivers only through the VmmDriver interface; never
 * imports HTTP or CLI code.
 */
export { Vm, type VmBootOptions } from './vm.js';
export { VmService, type VmProfile, type CreateVmRequest, type VmServiceOptions } from './vm-service.js';
export { VmStateMachine, VM_STATES, type VmState } from './state-machine.js';
export { StepList, type Step, type PhaseTiming } from '../steps/index.js';
export { coldBootSteps, restoreSteps, standbySteps, withStandby, type AdoptedVmm, type BootContext } from './boot-steps.js';
export { StandbyVmms, standbyKey, MAX_STANDBY_VMMS, type StandbyStatus, type StandbyVmm, type StandbyVmmsOptions } from './standby.js';
