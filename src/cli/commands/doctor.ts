import { mkdirSync, statfsSync } from 'node:fs';
import { checkNetworkPrereqs } from '../../net/index.js';
import type { Command } from 'commander';
import { resolveImage } from '../../guest/image-store.js';
import { launcherCheck } from '../../launcher/index.js';
import { findExecutable, runCommand } from '../../process/index.js';
import { privilegeChecks } from '../../security/index.js';
import { firecrackerChecks } from '../../vmm/firecracker/doctor.js';
import { QemuDriver } from '../../vmm/index.js';
import type { CliContext, WithContext } from '../context.js';
import { printJson } from '../output.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  detail: string;
  /** How to fix it; present unless status is ok. */
  fix?: string;
}

const MIN_FREE_BYTES = 2 * 1024 ** 3;

/** Runs every host check. Never throws: a check that cannot run reports fail. */
export async function runDoctor(ctx: CliContext): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const config = ctx.config;

  const qemu = new QemuDriver({ binary: config.vmm.qemu.binary, accel: config.vmm.qemu.accel });
  try {
    const info = await qemu.probe();
    checks.push({ name: 'qemu', status: 'ok', detail: `${info.binary} version ${info.version}` });
    checks.push({
      name: 'accelerator',
      status: info.accel === 'kvm' ? 'ok' : 'warn',
      detail: `${info.accel}: ${info.accelReason}`,
      ...(info.accel === 'tcg' ? { fix: 'VMs run under software emulation (slow boots); use a host with working hardware KVM for production speed' } : {}),
    });
  } catch (err) {
    checks.push({ name: 'qemu', status: 'fail', detail: (err as Error).message, fix: 'apt-get install --no-install-recommends qemu-system-x86' });
  }
  // tfc-vmm-exec: starts VMMs at vmm.nice with THP off (docs/density.md); without it they are reniced after start.
  checks.push(await launcherCheck(config));

  // Privilege model: who QEMU runs as, its sandbox, the uid range, file modes (docs/security.md).
  const qemuBinary = findExecutable(config.vmm.qemu.binary);
  const qemuHelp = qemuBinary
    ? await runCommand(qemuBinary, ['-help'], { timeoutMs: 10_000, allowFailure: true }).then(
        (r) => r.stdout.toString(),
        () => null,
      )
    : null;
  checks.push(...privilegeChecks(config, qemuHelp));

  // Firecracker: binary and version, KVM usability, jailer, cgroup v2 (all optional: QEMU works without them).
  checks.push(...(await firecrackerChecks(config)));

  for (const [tool, pkg] of [
    ['busybox', 'busybox-static'],
    ['lz4', 'lz4'],
    ['cpio', 'cpio'],
    ['gcc', 'gcc libc6-dev'],
    ['dpkg-deb', 'dpkg'],
    ['apt-get', 'apt'],
  ] as const) {
    const path = findExecutable(tool);
    checks.push(
      path
        ? { name: `tool ${tool}`, status: 'ok', detail: path }
        : { name: `tool ${tool}`, status: 'fail', detail: 'not found (needed by `tfc image build`)', fix: `apt-get install ${pkg}` },
    );
  }

  // Networking: root or CAP_NET_ADMIN, /dev/net/tun, ip, nft, forwarding.
  checks.push(...checkNetworkPrereqs());

  // The images the default profile and the pools need must be built (fail);
  // other profiles' images (built-in python and node) only when used (warn).
  const needed = new Set([config.profiles[config.defaultProfile]?.image, ...Object.values(config.pools).map((p) => config.profiles[p.profile]?.image)]);
  const images = new Set(Object.values(config.profiles).map((p) => p.image));
  for (const name of images) {
    try {
      const image = resolveImage(ctx.layout, name);
      checks.push({ name: `image ${name}`, status: 'ok', detail: `${image.manifest.digest.slice(0, 16)} kernel ${image.manifest.kernel.release}` });
    } catch {
      const used = [...Object.values(config.profiles)].filter((p) => p.image === name).map((p) => p.name);
      checks.push({
        name: `image ${name}`,
        status: needed.has(name) ? 'fail' : 'warn',
        detail: `not built (profile ${used.join(', ')} cannot start VMs until it is)`,
        fix: `tfc image build ${name}`,
      });
    }
  }
  const mmdebstrap = findExecutable('mmdebstrap');
  checks.push(
    mmdebstrap
      ? { name: 'tool mmdebstrap', status: 'ok', detail: mmdebstrap }
      : {
          name: 'tool mmdebstrap',
          status: 'warn',
          detail: 'not found (needed to build debian images such as python and node)',
          fix: 'apt-get install mmdebstrap',
        },
  );

  try {
    mkdirSync(ctx.layout.root, { recursive: true });
    const fs = statfsSync(ctx.layout.root);
    const free = fs.bavail * fs.bsize;
    const gib = (free / 1024 ** 3).toFixed(1);
    checks.push(
      free >= MIN_FREE_BYTES
        ? { name: 'disk', status: 'ok', detail: `${gib} GiB free in ${ctx.layout.root}` }
        : {
            name: 'disk',
            status: 'warn',
            detail: `only ${gib} GiB free in ${ctx.layout.root}`,
            fix: 'free space or point data_dir (TFC_DATA_DIR) elsewhere: images need about 200 MiB, snapshots more',
          },
    );
  } catch (err) {
    checks.push({
      name: 'disk',
      status: 'fail',
      detail: `cannot use data_dir ${ctx.layout.root}: ${(err as Error).message}`,
      fix: 'set data_dir (TFC_DATA_DIR) to a writable directory',
    });
  }
  return checks;
}

export function registerDoctor(program: Command, withContext: WithContext): void {
  program
    .command('doctor')
    .description(
      'check this host: QEMU, accelerator, privilege model, Firecracker, tools, /dev/net/tun, root, images, disk; exits 1 when something required fails',
    )
    .option('--json', 'print the checks as JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await withContext(async (ctx) => {
        const checks = await runDoctor(ctx);
        const failed = checks.some((c) => c.status === 'fail');
        if (opts.json) {
          printJson({ ok: !failed, checks });
        } else {
          process.stdout.write(formatChecks(checks));
        }
        return failed ? 1 : 0;
      });
    });
}

/** One line per check, its fix indented below: readable in a narrow terminal and in CI logs. */
export function formatChecks(checks: readonly DoctorCheck[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  return (
    checks
      .map((c) => `${`[${c.status}]`.padEnd(7)}${c.name.padEnd(width + 2)}${c.detail}${c.fix ? `\n${' '.repeat(width + 9)}fix: ${c.fix}` : ''}`)
      .join('\n') + '\n'
  );
}
