#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (root, Node >= 20, npm, apt) for
# terraphim-firecracker: system packages, npm dependencies, the build.
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the dashboard's browser test (test/ui-browser.test.ts) drives it through playwright-core.
packages=(qemu-system-x86 busybox-static lz4 cpio e2fsprogs mmdebstrap gcc libc6-dev iproute2 nftables util-linux ca-certificates chromium etcd-server etcd-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# apt-cache needs current package lists for the kernel package the image builder downloads.
if [ ${#missing[@]} -gt 0 ] || [ -z "$(apt-cache search --names-only '^linux-image-cloud-amd64$' 2>/dev/null)" ]; then
  echo "setup: apt-get update" >&2
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  # --no-install-recommends: QEMU's recommends pull in hundreds of MB of GUI/audio libraries.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# etcd-server starts a single-member etcd on the default ports; cluster mode runs its own members (docs/cluster.md).
if command -v systemctl >/dev/null && systemctl is-enabled etcd >/dev/null 2>&1; then systemctl disable --now etcd || true; fi

node -e 'const [maj]=process.versions.node.split(".").map(Number); if (maj < 20) { console.error("setup: Node >= 20 required, found " + process.version); process.exit(1); }'
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: npm run build" >&2
npm run build --silent
