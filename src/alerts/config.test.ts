import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { WEBHOOK_EVENT_TYPES } from '../config/schema.js';
import { EVENT_TYPES } from '../events/index.js';
import type { TfcError } from '../errors/index.js';

// [alerts] and profiles.X.target_ms in tfc.toml: defaults, overrides, and
// the config problem reporting for bad values (key, line, what to do).
const dir = mkdtempSync(join(tmpdir(), 'tfc-alerts-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function load(toml: string, env: NodeJS.ProcessEnv = {}) {
  const path = join(dir, `tfc-${n++}.toml`);
  writeFileSync(path, toml);
  return loadConfig({ configPath: path, env: { TFC_DATA_DIR: dir, ...env } });
}

function problems(toml: string): Array<{ key?: string; line?: number; message: string }> {
  try {
    load(toml);
  } catch (err) {
    expect((err as TfcError).code).toBe('CONFIG_INVALID');
    return ((err as TfcError).details as { errors: Array<{ key?: string; line?: number; message: string }> }).errors;
  }
  throw new Error('the config loaded');
}

describe('[alerts] config', () => {
  it('defaults to enabled, a 1 s evaluation, no overrides and no webhooks', () => {
    const { config, sources } = load('');
    expect(config.alerts).toEqual({ enabled: true, evalIntervalMs: 1000, rules: {}, webhooks: [] });
    expect(sources['alerts.enabled']).toEqual({ kind: 'default' });
  });

  it('reads rule overrides, webhooks with their defaults, and a profile target', () => {
    const { config, sources } = load(`
[alerts]
eval_interval_ms = 250
[alerts.rules.pool_empty]
for_ms = 1500
threshold = 1
[alerts.rules.host_memory_low]
enabled = false
[[alerts.webhooks]]
url = "https://hooks.example.com/tfc"
secret_env = "HOOK_KEY"
[[alerts.webhooks]]
url = "http://127.0.0.1:9000/"
secret = "k"
events = ["alert", "pool"]
timeout_ms = 1000
max_attempts = 2
queue_size = 10
[profiles.quick]
target_ms = 900
`);
    expect(config.alerts!.evalIntervalMs).toBe(250);
    expect(config.alerts!.rules).toEqual({ pool_empty: { forMs: 1500, threshold: 1 }, host_memory_low: { enabled: false } });
    expect(config.alerts!.webhooks).toEqual([
      { url: 'https://hooks.example.com/tfc', secret: null, secretEnv: 'HOOK_KEY', events: ['alert'], timeoutMs: 5000, maxAttempts: 5, queueSize: 256 },
      { url: 'http://127.0.0.1:9000/', secret: 'k', secretEnv: null, events: ['alert', 'pool'], timeoutMs: 1000, maxAttempts: 2, queueSize: 10 },
    ]);
    expect(sources['alerts.rules.pool_empty.for_ms']).toMatchObject({ kind: 'file', line: 5 });
    expect(config.profiles.quick.targetMs).toBe(900);
    expect(config.profiles.minimal.targetMs).toBeUndefined();
  });

  it('reports unknown rules and keys with a suggestion, naming the key and its line', () => {
    const found = problems(`
[alerts.rules.pool_empt]
for_ms = 1
[[alerts.webhooks]]
url = "https://x.example/"
secrte = "a"
`);
    expect(found).toEqual([
      expect.objectContaining({ key: 'alerts.rules.pool_empt', line: 2, message: expect.stringMatching(/unknown key; did you mean "pool_empty"\?/) }),
      expect.objectContaining({
        key: 'alerts.webhooks.0.secrte',
        message: expect.stringMatching(/did you mean "secret"\?.*allowed here: url, secret, secret_env/),
      }),
    ]);
  });

  it('rejects bad values: non-http URLs, unknown event types, out-of-range numbers, a missing url, both secrets', () => {
    const found = problems(`
[alerts]
eval_interval_ms = 5
[alerts.rules.allocation_p99]
threshold = -1
for_ms = 1.5
[[alerts.webhooks]]
url = "ftp://x.example/"
events = ["alerts"]
max_attempts = 0
[[alerts.webhooks]]
secret = "a"
secret_env = "B"
`);
    const byKey = Object.fromEntries(found.map((p) => [p.key, p.message]));
    expect(byKey['alerts.eval_interval_ms']).toMatch(/integer from 100 to 600000/);
    expect(byKey['alerts.rules.allocation_p99.threshold']).toMatch(/number >= 0/);
    expect(byKey['alerts.rules.allocation_p99.for_ms']).toMatch(/integer from 0/);
    expect(byKey['alerts.webhooks.0.url']).toMatch(/http:\/\/ or https:\/\/ URL/);
    expect(byKey['alerts.webhooks.0.events.0']).toMatch(/must be one of "vm.state".*"alert"/);
    expect(byKey['alerts.webhooks.0.max_attempts']).toMatch(/integer from 1 to 10/);
    expect(byKey['alerts.webhooks.1']).toMatch(/missing url/);
    expect(byKey['alerts.webhooks.1.secret_env']).toMatch(/either secret or secret_env/);
    expect(problems('[profiles.x]\ntarget_ms = -5\n')[0]).toMatchObject({ key: 'profiles.x.target_ms' });
  });

  it('offers webhooks exactly the event types of the bus', () => {
    expect([...WEBHOOK_EVENT_TYPES]).toEqual([...EVENT_TYPES]);
  });
});
