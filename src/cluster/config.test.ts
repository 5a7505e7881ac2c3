import { describe, expect, it } from 'vitest';
import { TfcError } from '../errors/index.js';
import { defaultNodeName, resolveClusterConfig } from './config.js';

const base = {
  endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'],
  node_name: 'node-1',
  advertise_url: 'http://10.0.0.1:8080/',
  token_env: 'TFC_CLUSTER_TOKEN',
};
const env = { TFC_CLUSTER_TOKEN: 'x'.repeat(32), ETCD_PW: 'secret' };

function problems(raw: unknown, e: NodeJS.ProcessEnv = env): string[] {
  try {
    resolveClusterConfig(raw, { env: e, hostname: 'host-a.example.org' });
  } catch (err) {
    expect(err).toBeInstanceOf(TfcError);
    expect((err as TfcError).code).toBe('CONFIG_INVALID');
    return (err as TfcError).details!.problems as string[];
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('[cluster] config', () => {
  it('applies defaults and resolves the token from the environment', () => {
    const c = resolveClusterConfig(base, { env, hostname: 'h' });
    expect(c).toEqual({
      endpoints: base.endpoints,
      nodeName: 'node-1',
      advertiseUrl: 'http://10.0.0.1:8080',
      token: env.TFC_CLUSTER_TOKEN,
      leaseTtlS: 10,
      publishIntervalMs: 1000,
      keyPrefix: '/tfc/',
      callTimeoutMs: 3000,
    });
  });

  it('takes the node name from the host name when not set, and TLS and auth options', () => {
    const c = resolveClusterConfig(
      {
        ...base,
        node_name: undefined,
        endpoints: ['https://etcd-1:2379'],
        ca_file: '/etc/tfc/ca.pem',
        cert_file: '/etc/tfc/c.pem',
        key_file: '/etc/tfc/k.pem',
        username: 'tfc',
        password_env: 'ETCD_PW',
        key_prefix: '/tfc/prod/',
        lease_ttl_s: 5,
      },
      { env, hostname: 'Worker-7.example.org' },
    );
    expect(c.nodeName).toBe('worker-7');
    expect(c.tls).toEqual({ caFile: '/etc/tfc/ca.pem', certFile: '/etc/tfc/c.pem', keyFile: '/etc/tfc/k.pem' });
    expect(c.auth).toEqual({ username: 'tfc', password: 'secret' });
    expect(c.keyPrefix).toBe('/tfc/prod/');
    expect(c.leaseTtlS).toBe(5);
    expect(defaultNodeName('under_score')).toBeNull();
  });

  it('names each bad key and says what is allowed', () => {
    const p = problems({
      ...base,
      endpoints: ['10.0.0.1:2379'],
      node_name: 'Node_1',
      lease_ttl_s: 1,
      publish_interval_ms: 'fast',
      key_prefix: 'tfc',
      tokn: 'x',
    });
    expect(p.join('\n')).toMatch(/cluster\.endpoints\.0: must be an etcd client URL such as "http:\/\/10\.0\.0\.1:2379"/);
    expect(p.join('\n')).toMatch(/cluster\.node_name: must be a lower-case DNS label/);
    expect(p.join('\n')).toMatch(/cluster\.lease_ttl_s: must be an integer from 2 to 300/);
    expect(p.join('\n')).toMatch(/cluster\.publish_interval_ms: must be an integer from 100 to 60000/);
    expect(p.join('\n')).toMatch(/cluster\.key_prefix: must start and end with "\/"/);
    expect(p.join('\n')).toMatch(/unknown key\(s\) "tokn"/);
  });

  it('checks the rules that span keys', () => {
    expect(problems({ advertise_url: 'http://a:1' }, {}).join('\n')).toMatch(/cluster\.endpoints: missing[\s\S]*cluster\.token_env: missing/);
    expect(problems({ ...base, token: 'y'.repeat(20) })).toEqual([expect.stringMatching(/token and cluster\.token_env: both set/)]);
    expect(problems(base, {})).toEqual([expect.stringMatching(/environment variable TFC_CLUSTER_TOKEN is not set/)]);
    expect(problems(base, { TFC_CLUSTER_TOKEN: 'short' })).toEqual([expect.stringMatching(/shorter than 16/)]);
    expect(problems({ ...base, cert_file: '/c.pem', endpoints: ['https://e:2379'] })).toEqual([expect.stringMatching(/set both/)]);
    expect(problems({ ...base, ca_file: '/ca.pem' })).toEqual([expect.stringMatching(/TLS files are set but http:\/\/10\.0\.0\.1:2379 is http:\/\//)]);
    expect(problems({ ...base, endpoints: ['http://a:1', 'https://b:2'] })).toEqual([expect.stringMatching(/mixes http/)]);
    expect(problems({ ...base, password_env: 'ETCD_PW' })).toEqual([expect.stringMatching(/cluster\.username: missing/)]);
    expect(problems({ ...base, username: 'u' })).toEqual([expect.stringMatching(/cluster\.password_env: missing/)]);
    expect(resolveClusterConfig({ ...base, node_name: undefined }, { env, hostname: 'host-a.example.org' }).nodeName).toBe('host-a');
    expect(problems({ ...base, node_name: undefined, advertise_url: undefined }, env)).toEqual([expect.stringMatching(/advertise_url: missing/)]);
    expect(() => resolveClusterConfig({ ...base, node_name: undefined }, { env, hostname: 'my_host' })).toThrow(/host name "my_host" is not a valid node name/);
  });
});

describe('[cluster] in tfc.toml', () => {
  it('is resolved into config.cluster when present, absent otherwise, and kept out of the sources', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadConfig } = await import('../config/index.js');
    const dir = mkdtempSync(join(tmpdir(), 'tfc-cluster-config-'));
    try {
      const plain = join(dir, 'plain.toml');
      writeFileSync(plain, '[pools.default]\nmax = 2\n');
      expect(loadConfig({ configPath: plain, env: { TFC_DATA_DIR: dir } }).config.cluster).toBeUndefined();
      const file = join(dir, 'cluster.toml');
      writeFileSync(
        file,
        '[cluster]\nendpoints = ["http://10.0.0.1:2379"]\nnode_name = "node-1"\nadvertise_url = "http://10.0.0.1:8080"\ntoken_env = "TFC_CLUSTER_TOKEN"\nlease_ttl_s = 5\n',
      );
      const loaded = loadConfig({ configPath: file, env: { TFC_DATA_DIR: dir, TFC_CLUSTER_TOKEN: 'y'.repeat(20) } });
      expect(loaded.config.cluster).toMatchObject({ nodeName: 'node-1', token: 'y'.repeat(20), leaseTtlS: 5, advertiseUrl: 'http://10.0.0.1:8080' });
      expect(Object.keys(loaded.sources).filter((k) => k.startsWith('cluster'))).toEqual([]);
      // The variable must be set when the file is read.
      expect(() => loadConfig({ configPath: file, env: { TFC_DATA_DIR: dir } })).toThrow(/TFC_CLUSTER_TOKEN is not set/);
      // Unknown keys are reported by the root schema with the table's path.
      writeFileSync(file, '[cluster]\nendpoint = ["http://10.0.0.1:2379"]\n');
      expect(() => loadConfig({ configPath: file, env: { TFC_DATA_DIR: dir } })).toThrow(/cluster\.endpoint/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
