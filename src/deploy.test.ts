/**
 * The deployment files in deploy/ cannot run here (no Kubernetes, Nomad or
 * systemd in CI), so this checks what can be checked: the YAML parses into
 * the expected objects, and the tfc.toml each one writes (with its
 * placeholders filled as the orchestrator would) loads with tfc's own config
 * loader, [cluster] table included.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from './config/index.js';
import { packagePath } from './package-root.js';

const dir = mkdtempSync(join(tmpdir(), 'tfc-deploy-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const read = (path: string) => readFileSync(packagePath(path), 'utf8');
const ENV = { TFC_CLUSTER_TOKEN: 'a-cluster-token-of-32-characters' };

function loadToml(name: string, text: string) {
  const path = join(dir, name);
  writeFileSync(path, text);
  return loadConfig({ configPath: path, env: ENV, cwd: dir, uid: 0 }).config;
}

/** The parts of the Kubernetes objects the tests read. */
interface K8sObject {
  kind: string;
  data?: Record<string, string>;
  spec: {
    replicas?: number;
    template: {
      spec: {
        hostNetwork?: boolean;
        containers: Array<{ securityContext?: { privileged?: boolean } }>;
        volumes: Array<{ name: string; hostPath?: { path: string } }>;
      };
    };
  };
}

function docs(path: string): K8sObject[] {
  return parseAllDocuments(read(path)).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as K8sObject;
  });
}

describe('deploy/', () => {
  it('kubernetes: a privileged host-network DaemonSet with /dev/kvm whose config template loads', () => {
    const all = docs('deploy/kubernetes/tfc-daemonset.yaml');
    const ds = all.find((d) => d.kind === 'DaemonSet')!;
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.containers[0].securityContext?.privileged).toBe(true);
    expect(pod.volumes.find((v) => v.name === 'kvm')?.hostPath?.path).toBe('/dev/kvm');
    const template = all.find((d) => d.kind === 'ConfigMap')!.data!['tfc.toml.in'];
    const config = loadToml('k8s.toml', template.replace('@NODE_NAME@', 'worker-1').replace('@NODE_IP@', '10.0.0.5'));
    expect(config.cluster).toMatchObject({ nodeName: 'worker-1' });
    expect(config.api.listen).toBe('0.0.0.0:7070');
  });

  it('kubernetes: three etcd members', () => {
    const sts = docs('deploy/kubernetes/etcd.yaml').find((d) => d.kind === 'StatefulSet')!;
    expect(sts.spec.replicas).toBe(3);
  });

  it('nomad: the config template loads once its placeholders are filled', () => {
    const hcl = read('deploy/nomad/tfc.nomad.hcl');
    const toml = /destination = "local\/tfc\.toml"\s+data\s+= <<-EOT\n([\s\S]*?)\n\s*EOT/.exec(hcl)?.[1];
    expect(toml).toBeDefined();
    const filled = toml!.replace(/^ +/gm, '').replace('{{ env "node.unique.name" | toLower }}', 'client-1').replace('{{ env "NOMAD_IP_api" }}', '10.0.0.7');
    expect(loadToml('nomad.toml', filled).cluster).toMatchObject({ nodeName: 'client-1' });
  });

  it('systemd: runs this package’s bin/tfc.js serve', () => {
    const unit = read('deploy/systemd/tfc.service');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/terraphim-firecracker\/bin\/tfc\.js serve$/m);
    expect(existsSync(packagePath('bin/tfc.js'))).toBe(true);
  });
});
