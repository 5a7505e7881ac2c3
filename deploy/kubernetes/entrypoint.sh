#!/bin/sh
# Seeds the host's data dir with the images built into the container image
# (once), then runs tfc with the given arguments.
set -eu
if [ ! -d /var/lib/tfc/images ] && [ -d /opt/tfc-images/images ]; then
  mkdir -p /var/lib/tfc
  cp -a /opt/tfc-images/images /var/lib/tfc/images
fi
exec node /opt/terraphim-firecracker/bin/tfc.js "$@"
