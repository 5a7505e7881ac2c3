// Text rendering of one image's manifest for `tfc image inspect` (the
// --json form prints the manifest itself).
import { manifestKind, type BuiltImage } from '../guest/image-store.js';

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

/** Sum of the image's files (the rootfs counted at its apparent size). */
export function imageSizeBytes(image: BuiltImage): number {
  const f = image.manifest.files;
  return f.vmlinux.sizeBytes + f.initrd.sizeBytes + (f.rootfs?.sizeBytes ?? 0);
}

/** Most installed packages listed one per line; the rest are counted. */
const MAX_PACKAGES_SHOWN = 400;

/** A readable report of the image: identity, files, the rootfs and what is in it. Pure. */
export function renderImageInspect(image: BuiltImage): string {
  const m = image.manifest;
  const out: string[] = [
    `name:     ${m.name}`,
    `kind:     ${manifestKind(m)}`,
    `digest:   ${m.digest}`,
    `key:      ${m.key}`,
    `created:  ${m.created_at}`,
    `dir:      ${image.dir}`,
    `kernel:   ${m.kernel.release} (${m.kernel.package} ${m.kernel.version})`,
    `modules:  ${m.modules.join(' ')}`,
    `files:    vmlinux ${mib(m.files.vmlinux.sizeBytes)}, initrd.cpio ${mib(m.files.initrd.sizeBytes)}${m.files.rootfs ? `, rootfs.ext4 ${mib(m.files.rootfs.sizeBytes)}` : ''}`,
  ];
  if (m.rootfs) {
    out.push(
      `rootfs:   ext4 label ${m.rootfs.label} uuid ${m.rootfs.uuid}, ${mib(m.rootfs.content_bytes)} content + ${m.rootfs.extra_mib} MiB free, ${m.rootfs.inodes} inodes (key ${m.rootfs.key.slice(0, 16)})`,
    );
  }
  const c = m.contents;
  if (c?.kind === 'debian') {
    out.push(
      `debian:   ${c.suite} ${c.variant} from ${c.mirror} (mmdebstrap ${c.mmdebstrap_version})`,
      `asked:    ${c.requested.join(' ') || '(none)'}`,
      `packages: ${c.packages.length} installed`,
    );
    for (const p of c.packages.slice(0, MAX_PACKAGES_SHOWN)) out.push(`  ${p.name} ${p.version}${p.architecture ? ` ${p.architecture}` : ''}`);
    if (c.packages.length > MAX_PACKAGES_SHOWN) out.push(`  ... ${c.packages.length - MAX_PACKAGES_SHOWN} more (--json lists all)`);
  } else if (c?.kind === 'oci') {
    const s = c.stats;
    out.push(
      `oci:      ${c.source}${c.ref ? ` ref ${c.ref}` : ''} (${c.format})`,
      `manifest: ${c.manifest_digest}`,
      `layers:   ${c.layers.length}`,
      ...c.layers.map((l, i) => `  ${i + 1}. ${l.digest} ${mib(l.sizeBytes)} ${l.mediaType}`),
      `env:        ${c.config.env.length > 0 ? c.config.env.join(' ') : '(none)'}`,
      `entrypoint: ${c.config.entrypoint ? JSON.stringify(c.config.entrypoint) : '(none)'}`,
      `cmd:        ${c.config.cmd ? JSON.stringify(c.config.cmd) : '(none)'}`,
      `workdir:    ${c.config.workingDir || '/'}`,
      `user:       ${c.config.user || '(root)'}`,
      `stats:    ${s.files} files, ${s.dirs} dirs, ${s.symlinks} symlinks, ${s.hardlinks} hard links, ${s.whiteouts} whiteouts, ${s.skipped.length} skipped`,
    );
    for (const sk of s.skipped.slice(0, 20)) out.push(`  skipped ${sk.path}: ${sk.reason}`);
  }
  return out.join('\n') + '\n';
}
