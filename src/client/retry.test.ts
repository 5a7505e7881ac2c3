import { describe, expect, it } from 'vitest';
import { DaemonUnavailableError, PoolExhaustedError, TfcClient, TfcError, VmBusyError, retryDelay, DEFAULT_RETRY } from './index.js';

// The request core against a scripted fetch: which answers are retried,
// how long it waits, and that nothing that may have run is sent twice.
type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

function scripted(answers: Answer[]) {
  const calls: Array<{ method: string; url: string; at: number; headers: Record<string, string> }> = [];
  const fetchImpl: typeof fetch = async (input, init) => {
    calls.push({ method: init?.method ?? 'GET', url: String(input), at: performance.now(), headers: (init?.headers ?? {}) as Record<string, string> });
    const a = answers[Math.min(calls.length - 1, answers.length - 1)];
    return new Response(a.body === undefined ? null : JSON.stringify(a.body), {
      status: a.status,
      headers: { 'content-type': 'application/json', ...a.headers },
    });
  };
  return { calls, fetchImpl };
}

const exhausted = (details?: Record<string, unknown>): Answer => ({
  status: 503,
  body: { error: { code: 'POOL_EXHAUSTED', message: 'pool p has no ready VM', ...(details ? { details } : {}) } },
  headers: { 'retry-after': '1' },
});
const vm = { id: 'vm-0123456789ab', state: 'running', profile: 'minimal', driver: 'fake' };

describe('TfcClient retries', () => {
  it('retries allocate on POOL_EXHAUSTED after the Retry-After header (seconds) when the answer names no exact delay', async () => {
    const { calls, fetchImpl } = scripted([exhausted(), { status: 201, body: { vm, allocation_ms: 2 } }]);
    const client = new TfcClient({ url: 'http://tfc.test/', token: 't0k', fetch: fetchImpl });
    const r = await client.allocate('p', { ttl_ms: 1000 });
    expect(r.vm.id).toBe(vm.id);
    expect(calls).toHaveLength(2);
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(990);
    expect(calls[0].url).toBe('http://tfc.test/v1/pools/p/allocate');
    expect(calls[0].headers.authorization).toBe('Bearer t0k');
  });

  it("prefers the daemon's exact details.retry_after_ms over the rounded header", async () => {
    const { calls, fetchImpl } = scripted([exhausted({ retry_after_ms: 120 }), { status: 201, body: { vm, allocation_ms: 2 } }]);
    await new TfcClient({ url: 'http://tfc.test', fetch: fetchImpl }).allocate('p');
    const gap = calls[1].at - calls[0].at;
    expect(gap).toBeGreaterThanOrEqual(110);
    expect(gap).toBeLessThan(900);
  });

  it('gives up after maxAttempts with the typed error of the last answer', async () => {
    const { calls, fetchImpl } = scripted([exhausted({ retry_after_ms: 5 })]);
    const client = new TfcClient({ url: 'http://tfc.test', fetch: fetchImpl, retry: { maxAttempts: 3 } });
    const err = await client.allocate('p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolExhaustedError);
    expect((err as TfcError).status).toBe(503);
    expect((err as TfcError).details).toEqual({ retry_after_ms: 5 });
    expect(calls).toHaveLength(3);
  });

  it('gives up at once when the wait would pass maxTotalMs', async () => {
    const { calls, fetchImpl } = scripted([exhausted({ retry_after_ms: 5000 })]);
    const started = performance.now();
    const err = await new TfcClient({ url: 'http://tfc.test', fetch: fetchImpl, retry: { maxTotalMs: 1000 } }).allocate('p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolExhaustedError);
    expect(calls).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('never retries exec or run (they may have run), nor anything with retry: false', async () => {
    const busy: Answer = { status: 429, body: { error: { code: 'VM_BUSY', message: 'busy' } } };
    const a = scripted([busy]);
    const client = new TfcClient({ url: 'http://tfc.test', fetch: a.fetchImpl });
    await expect(client.exec(vm.id, { cmd: ['true'] })).rejects.toBeInstanceOf(VmBusyError);
    await expect(client.run({ language: 'bash', code: 'true' })).rejects.toBeInstanceOf(VmBusyError);
    expect(a.calls.map((c) => c.method)).toEqual(['POST', 'POST']);
    const b = scripted([exhausted({ retry_after_ms: 1 }), { status: 201, body: { vm, allocation_ms: 1 } }]);
    await expect(new TfcClient({ url: 'http://tfc.test', fetch: b.fetchImpl, retry: false }).allocate('p')).rejects.toBeInstanceOf(PoolExhaustedError);
    expect(b.calls).toHaveLength(1);
  });

  it('retries idempotent GETs on VM_BUSY, but not other errors', async () => {
    const a = scripted([
      { status: 429, body: { error: { code: 'VM_BUSY', message: 'busy', details: { retry_after_ms: 1 } } } },
      { status: 200, body: vm },
    ]);
    expect((await new TfcClient({ url: 'http://tfc.test', fetch: a.fetchImpl }).getVm(vm.id)).id).toBe(vm.id);
    expect(a.calls).toHaveLength(2);
    const b = scripted([
      { status: 500, body: { error: { code: 'INTERNAL', message: 'boom' } } },
      { status: 200, body: vm },
    ]);
    await expect(new TfcClient({ url: 'http://tfc.test', fetch: b.fetchImpl }).getVm(vm.id)).rejects.toMatchObject({ code: 'INTERNAL', message: 'boom' });
    expect(b.calls).toHaveLength(1);
  });

  it('a fetch that fails is DAEMON_UNAVAILABLE, a timeout says so', async () => {
    const down = new TfcClient({ url: 'http://tfc.test', fetch: async () => Promise.reject(new TypeError('fetch failed')) });
    await expect(down.health()).rejects.toBeInstanceOf(DaemonUnavailableError);
    const slow = new TfcClient({
      url: 'http://tfc.test',
      timeoutMs: 50,
      fetch: (_u, init) => new Promise((_r, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal?.reason))),
    });
    await expect(slow.listVms()).rejects.toThrow(/did not answer in time/);
  });

  it('an unknown code (a newer daemon) keeps its name in the message', async () => {
    const { fetchImpl } = scripted([{ status: 418, body: { error: { code: 'SOMETHING_NEW', message: 'hello' } } }]);
    await expect(new TfcClient({ url: 'http://tfc.test', fetch: fetchImpl }).getVm(vm.id)).rejects.toMatchObject({
      code: 'INTERNAL',
      status: 418,
      message: 'SOMETHING_NEW: hello',
    });
  });

  it('retryDelay: only retryable codes, within the policy', () => {
    const e = new PoolExhaustedError('x', { details: { retry_after_ms: 300 } });
    expect(retryDelay(e, DEFAULT_RETRY, 1, 0)).toBe(300);
    expect(retryDelay(e, DEFAULT_RETRY, DEFAULT_RETRY.maxAttempts, 0)).toBeNull();
    expect(retryDelay(new PoolExhaustedError('x', { details: { retry_after_ms: 60_000 } }), DEFAULT_RETRY, 1, 0)).toBe(DEFAULT_RETRY.maxDelayMs);
    expect(retryDelay(new TfcError('VM_NOT_FOUND', 'gone'), DEFAULT_RETRY, 1, 0)).toBeNull();
  });
});
