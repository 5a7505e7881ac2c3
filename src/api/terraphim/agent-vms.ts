/**
 * Which VM serves which Terraphim agent, and the names Terraphim gave VMs.
 * An agent keeps ONE VM: its first execution without a vm_id allocates it
 * (owner `terraphim-agent:<agent_id>`), later ones reuse it while it lives
 * and is still allocated (a release through DELETE /v1/vms/{id} or an
 * expired lease ends it; the next execution allocates a new one). Bounded:
 * at most `maxAgents` agents hold a VM; beyond that POOL_EXHAUSTED.
 * In memory only; knows nothing about HTTP.
 */
import { PoolExhaustedError } from '../../errors/index.js';

export interface AgentVm {
  agentId: string;
  vmId: string;
  pool: string;
  /** Executions running in it now. */
  busy: number;
  createdAt: string;
  lastActivity: string | null;
}

export interface NamedVm {
  name: string;
  vmType: string;
  createdAt: string;
}

/** What the registry asks about VMs: alive and usable (allocated, or outside any pool). */
export type VmUsable = (vmId: string) => boolean;

/** The pool owner an agent's allocations use (reuse pools keep a released VM for it). */
export function agentOwner(agentId: string): string {
  return `terraphim-agent:${agentId}`;
}

export class AgentVms {
  private readonly agents = new Map<string, AgentVm>();
  private readonly pending = new Map<string, Promise<AgentVm>>();
  private readonly named = new Map<string, NamedVm>();

  constructor(
    private readonly usable: VmUsable,
    private readonly maxAgents: number,
    private readonly maxNamed: number,
  ) {}

  /** The agent's VM if it is still usable (a dead one is forgotten). */
  current(agentId: string): AgentVm | undefined {
    const a = this.agents.get(agentId);
    if (a && !this.usable(a.vmId)) {
      this.agents.delete(agentId);
      return undefined;
    }
    return a;
  }

  /**
   * The agent's VM, allocating one with `allocate` when it has none.
   * Concurrent calls for one agent share one allocation. Throws what
   * `allocate` throws, and PoolExhaustedError when `maxAgents` agents hold VMs.
   */
  async acquire(agentId: string, allocate: () => Promise<{ vmId: string; pool: string }>): Promise<AgentVm> {
    const have = this.current(agentId);
    if (have) return have;
    const waiting = this.pending.get(agentId);
    if (waiting) return waiting;
    if (this.agents.size + this.pending.size >= this.maxAgents) this.prune();
    if (this.agents.size + this.pending.size >= this.maxAgents) {
      throw new PoolExhaustedError(`${this.maxAgents} Terraphim agents already hold a VM; release one (DELETE /v1/vms/{id}) or wait for a lease to expire`, {
        details: { max_agents: this.maxAgents, retry_after_ms: 5000 },
      });
    }
    const p = (async () => {
      const { vmId, pool } = await allocate();
      const a: AgentVm = { agentId, vmId, pool, busy: 0, createdAt: new Date().toISOString(), lastActivity: null };
      this.agents.set(agentId, a);
      return a;
    })();
    this.pending.set(agentId, p);
    try {
      return await p;
    } finally {
      this.pending.delete(agentId);
    }
  }

  /** The agent whose VM `vmId` is, if any. */
  agentOf(vmId: string): AgentVm | undefined {
    for (const a of this.agents.values()) if (a.vmId === vmId) return a;
    return undefined;
  }

  /** Remembers the name and vm_type Terraphim gave VM `vmId` (oldest forgotten beyond the bound). */
  name(vmId: string, named: NamedVm): void {
    this.named.delete(vmId);
    this.named.set(vmId, named);
    while (this.named.size > this.maxNamed) this.named.delete(this.named.keys().next().value!);
  }

  nameOf(vmId: string): NamedVm | undefined {
    return this.named.get(vmId);
  }

  /** Forgets agents whose VMs are gone. */
  private prune(): void {
    for (const [id, a] of this.agents) if (!this.usable(a.vmId)) this.agents.delete(id);
  }
}
