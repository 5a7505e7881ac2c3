import { InvalidStateError, VmNotFoundError } from '../errors/index.js';
import type { PoolMember } from '../pool/index.js';
import type { Vm } from '../vm/index.js';
import type { ApiDeps } from './deps.js';

/** The API/CLI JSON shape of a VM. */
export interface VmView {
  id: string;
  pool: string | null;
  profile: string;
  state: string;
  driver: string;
  accel: string;
  created_by: 'boot' | 'restore';
  allocated: boolean;
  owner: string | null;
  uses: number;
  phases: Array<{ name: string; ms: number }>;
  /** Networked VMs: the VM's unique address as seen from the host, and the guest's own (same in every VM). */
  network: { host_address: string; guest_ip: string; netns: string } | null;
  created_at?: string;
  /** Allocated pool VMs: when the lease runs out (ISO time); null otherwise. */
  expires_at: string | null;
  /** Why the VM failed (state `failed`), from the store; null otherwise. */
  error: { code: string; message: string } | null;
  /** VMs that are gone (stored records): the reason of the last state change, e.g. "lease expired". */
  state_reason?: string | null;
}

/** The recorded failure of a failed VM (one SQLite read, only for failed VMs). */
function errorOf(deps: ApiDeps, id: string, state: string): VmView['error'] {
  if (state !== 'failed') return null;
  try {
    const r = deps.repo.get(id);
    return r.errorCode ? { code: r.errorCode, message: r.errorMessage ?? '' } : null;
  } catch {
    // A store that cannot be read must not hide the VM itself.
    return null;
  }
}

/** When the VM's lease runs out: its pool allocation's, or a fork's / resumed VM's (LiveSnapshotService.leases). */
function expiresAt(deps: ApiDeps, vmId: string, member: PoolMember | undefined): string | null {
  const at = member?.status === 'allocated' ? member.expiresAt : deps.liveSnapshots?.leases.expiresAt(vmId);
  return at === undefined ? null : new Date(at).toISOString();
}

export function viewOf(deps: ApiDeps, vm: Vm): VmView {
  const pool = deps.pools.poolOf(vm.id);
  const member = pool?.member(vm.id);
  return {
    id: vm.id,
    pool: pool?.name ?? null,
    profile: vm.profileName,
    state: vm.state,
    driver: vm.driverName,
    accel: vm.accel,
    created_by: vm.createdBy,
    allocated: member?.status === 'allocated',
    owner: member?.owner ?? null,
    uses: member?.uses ?? 0,
    phases: [...vm.bootPhases],
    network: vm.network ? { host_address: vm.network.hostAddress, guest_ip: vm.network.guestIp, netns: vm.network.netns } : null,
    expires_at: expiresAt(deps, vm.id, member),
    error: errorOf(deps, vm.id, vm.state),
  };
}

/** A VM this daemon runs, or (for GET) the stored record of one that is gone. Throws VmNotFoundError. */
export function viewById(deps: ApiDeps, id: string): VmView {
  const vm = deps.service.get(id);
  if (vm) return viewOf(deps, vm);
  const record = deps.repo.get(id);
  const kind = deps.repo.phases(id, 'restore').length > 0 ? 'restore' : 'boot';
  return {
    id: record.id,
    pool: null,
    profile: record.profile,
    state: record.state,
    driver: record.driver,
    accel: record.accel ?? 'unknown',
    created_by: kind,
    allocated: false,
    owner: null,
    uses: 0,
    phases: deps.repo.phases(id, kind),
    network: null,
    created_at: record.createdAt,
    expires_at: null,
    state_reason: deps.repo.transitions(id).at(-1)?.reason ?? null,
    error: record.state === 'failed' && record.errorCode ? { code: record.errorCode, message: record.errorMessage ?? '' } : null,
  };
}

/**
 * A VM the caller may use: live and, when it belongs to a pool, allocated
 * (an idle pool VM must stay pristine for the next allocation). Throws
 * VmNotFoundError or InvalidStateError.
 */
export function allocatedVm(deps: ApiDeps, id: string): Vm {
  const vm = liveVm(deps, id);
  const member = deps.pools.poolOf(id)?.member(id);
  if (member && member.status !== 'allocated') {
    throw new InvalidStateError(
      `VM ${id} is idle in pool ${deps.pools.poolOf(id)!.name} (it is ${member.status}); allocate a VM with POST /v1/pools/NAME/allocate`,
      {
        details: { vm_id: id, state: member.status },
      },
    );
  }
  return vm;
}

/** A live VM; throws VmNotFoundError (also for VMs that exist only as records). */
export function liveVm(deps: ApiDeps, id: string): Vm {
  const vm = deps.service.get(id);
  if (!vm) throw new VmNotFoundError(`no running VM with id "${id}"; list VMs with GET /v1/vms`);
  return vm;
}
