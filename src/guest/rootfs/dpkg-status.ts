/**
 * Reads which packages a Debian root filesystem holds from its dpkg
 * database (`/var/lib/dpkg/status`, deb822 paragraphs), for the image
 * manifest. Pure text parsing: nothing in the rootfs is executed.
 */

export interface InstalledPackage {
  name: string;
  version: string;
  architecture: string;
}

/** Largest status file read (a full Debian desktop's is about 3 MiB). */
export const MAX_DPKG_STATUS_BYTES = 64 * 1024 * 1024;

/**
 * Installed packages (Status "install ok installed") of a dpkg status file,
 * sorted by name then architecture. Paragraphs without Package or Version,
 * continuation lines and other fields are ignored; never throws.
 */
export function parseDpkgStatus(text: string): InstalledPackage[] {
  const out: InstalledPackage[] = [];
  for (const paragraph of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    for (const line of paragraph.split('\n')) {
      if (line === '' || line.startsWith(' ') || line.startsWith('\t')) continue;
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      fields.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    const name = fields.get('package');
    const version = fields.get('version');
    const status = fields.get('status')?.split(/\s+/);
    if (!name || !version || status?.[2] !== 'installed' || status[0] !== 'install') continue;
    out.push({ name, version, architecture: fields.get('architecture') ?? '' });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.architecture < b.architecture ? -1 : a.architecture > b.architecture ? 1 : 0));
}
