import { runCommand, findExecutable, type RunResult } from '../process/index.js';

/**
 * Runs the networking programs (ip, nft, sysctl, tc) in a chosen network
 * namespace (null = the namespace this process is in), always through the
 * process module with argv arrays. Program paths are resolved once, with
 * the sbin directories a non-login root shell may lack from PATH. No
 * install hints here: missing programs are reported up front, as
 * NETWORK_UNAVAILABLE, by prereqs.ts.
 */

export type Scope = string | null;

export interface NetExecOptions {
  /** Per-command limit. Default 10 s: these commands take milliseconds unless the kernel is stuck. */
  timeoutMs?: number;
}

function resolve(tool: string): string {
  return findExecutable(tool) ?? tool; // a missing tool fails at run time with "program not found"
}

export class NetExec {
  private readonly paths = new Map<string, string>();
  private readonly timeoutMs: number;

  constructor(options: NetExecOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  private path(tool: string): string {
    let p = this.paths.get(tool);
    if (p === undefined) {
      p = resolve(tool);
      this.paths.set(tool, p);
    }
    return p;
  }

  /** `ip [-n scope] args`; throws PROCESS_FAILED (with stderr) unless allowFailure. */
  ip(scope: Scope, args: readonly string[], allowFailure = false): Promise<RunResult> {
    return runCommand(this.path('ip'), scope ? ['-n', scope, ...args] : args, { timeoutMs: this.timeoutMs, allowFailure });
  }

  /** Several `ip` commands (one per element, argv form) in one process via `ip -batch -`; stops at the first failure. */
  ipBatch(scope: Scope, commands: ReadonlyArray<readonly string[]>): Promise<RunResult> {
    const input = commands.map((c) => c.join(' ')).join('\n') + '\n';
    return runCommand(this.path('ip'), [...(scope ? ['-n', scope] : []), '-batch', '-'], { timeoutMs: this.timeoutMs, input });
  }

  /** Any program inside `scope` (via `ip netns exec`), or directly when scope is null. */
  inScope(scope: Scope, tool: string, args: readonly string[], options: { input?: string; allowFailure?: boolean } = {}): Promise<RunResult> {
    const file = this.path(tool);
    const [cmd, argv] = scope ? [this.path('ip'), ['netns', 'exec', scope, file, ...args]] : [file, args];
    return runCommand(cmd, argv, { timeoutMs: this.timeoutMs, ...options });
  }

  /** Applies an nft script atomically (`nft -f -`). */
  nft(scope: Scope, script: string): Promise<RunResult> {
    return this.inScope(scope, 'nft', ['-f', '-'], { input: script });
  }

  /** `nft args` with its output (e.g. `-j list table inet tfc`). */
  nftQuery(scope: Scope, args: readonly string[], allowFailure = false): Promise<RunResult> {
    return this.inScope(scope, 'nft', args, { allowFailure });
  }

  /** The current value of a sysctl in `scope` (e.g. "0"). */
  async sysctlGet(scope: Scope, key: string): Promise<string> {
    return (await this.inScope(scope, 'sysctl', ['-n', key], {})).stdout.toString().trim();
  }

  sysctl(scope: Scope, key: string, value: string, allowFailure = false): Promise<RunResult> {
    return this.inScope(scope, 'sysctl', ['-q', '-w', `${key}=${value}`], { allowFailure });
  }

  /** Names of all named network namespaces (`ip netns list`; global, whatever the scope). */
  async listNetns(): Promise<string[]> {
    const out = await this.ip(null, ['netns', 'list']);
    return out.stdout
      .toString()
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter((n): n is string => Boolean(n));
  }

  tc(scope: Scope, args: readonly string[]): Promise<RunResult> {
    return runCommand(this.path('tc'), scope ? ['-n', scope, ...args] : args, { timeoutMs: this.timeoutMs });
  }
}
