import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { GUEST_PATH, INIT_START_MARKER, renderInitScript, renderStage2Init } from './init-script.js';

const mod = (name: string) => ({ name, path: `/x/${name}.ko` });
const groups = {
  serial: [mod('virtio_mmio'), mod('virtio_console')],
  vsock: [mod('virtio_mmio'), mod('vmw_vsock_virtio_transport')],
  net: [mod('virtio_mmio'), mod('virtio_net')],
  disk: [mod('virtio_mmio'), mod('virtio_blk'), mod('overlay')],
  all: [mod('virtio_mmio'), mod('virtio_console'), mod('virtio_blk'), mod('overlay'), mod('virtio_net')],
};
const hasBusybox = spawnSync('busybox', ['true']).status === 0;

/** `sh -n`: parses the whole script (heredoc included) without running it. */
function syntaxErrors(script: string): string {
  const r = spawnSync('busybox', ['sh', '-n'], { input: script });
  return `${r.status}${r.stderr.toString()}`;
}

describe('the guest init scripts', () => {
  it('prints the start marker before anything else that can fail, and never lets the agent loop end', () => {
    const init = renderInitScript(groups);
    const lines = init.split('\n');
    expect(lines.findIndex((l) => l.includes(INIT_START_MARKER))).toBeLessThan(lines.findIndex((l) => l.startsWith('mount -t proc')));
    expect(init).toMatch(/while true; do\n {2}\/sbin\/tfc-agent/);
    expect(renderStage2Init()).toMatch(/while true; do\n {2}\/\.tfc\/tfc-agent/);
    expect(init).toContain(`export PATH=${GUEST_PATH} `);
  });

  it('loads the disk group only for VMs with disks, and mounts the root read-only under a tmpfs overlay before switch_root', () => {
    const init = renderInitScript(groups);
    expect(init).toContain('[ -z "$ROOT$SCRATCH" ] || load virtio_mmio virtio_blk overlay');
    expect(init).toContain('mount -t ext4 -o ro,noload "$ROOT" /lower');
    expect(init).toContain('mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot');
    expect(init).toContain('exec switch_root -c /dev/console /newroot /.tfc/busybox sh /.tfc/init');
    // The stage-2 script is written verbatim (quoted heredoc: no expansion by stage 1).
    expect(init).toContain(`<<'TFC_STAGE2'\n${renderStage2Init()}TFC_STAGE2\n`);
    // Without a disk group from the builder, disk VMs load every module.
    expect(renderInitScript({ ...groups, disk: undefined })).toContain(
      '[ -z "$ROOT$SCRATCH" ] || load virtio_mmio virtio_console virtio_blk overlay virtio_net',
    );
  });

  it.runIf(hasBusybox)('both stages are valid busybox sh', () => {
    expect(syntaxErrors(renderInitScript(groups))).toBe('0');
    expect(syntaxErrors(renderStage2Init())).toBe('0');
  });
});
