#!/usr/bin/env bash
# The main job: start the daemon (golden snapshot + warm pool), allocate a VM
# from the default pool, run a command in it, show the timings, release it,
# run a Python program with `tfc run`, stop the daemon. Run after
# scripts/setup.sh and `npx tfc image build --all`.
set -euo pipefail
cd "$(dirname "$0")/.."
tfc() { node bin/tfc.js "$@"; }

port="${TFC_DEMO_PORT:-7070}"
export TFC_LISTEN="127.0.0.1:${port}" TFC_URL="http://127.0.0.1:${port}"
log="$(mktemp)"
node bin/tfc.js serve >"$log" 2>&1 &
daemon=$!
cleanup() { kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null; rm -f "$log"; }
trap cleanup EXIT

echo "== starting tfc serve (first start makes the golden snapshot: one cold boot)"
for _ in $(seq 1 600); do
  grep -q 'listening on' "$log" && break
  kill -0 "$daemon" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.2
done
sed 's/^/   /' "$log"
for _ in $(seq 1 300); do
  [ "$(tfc pool ls --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).pools[0].ready))')" -ge 1 ] && break
  sleep 0.1
done
echo "== pools"
tfc pool ls
echo "== allocate a VM from the warm pool"
vm="$(tfc pool allocate default)"
echo "== run a command in $vm"
start=$(date +%s%N)
tfc vm exec "$vm" -- sh -c 'echo "hello from $(hostname), kernel $(uname -r)"; cat /proc/uptime'
echo "   (exec round trip $(( ($(date +%s%N) - start) / 1000000 )) ms including CLI start-up)"
echo "== where the VM came from (restore phases of the clone)"
tfc vm get "$vm"
tfc vm rm "$vm"
echo "== released $vm"
echo "== run Python code in a fresh VM (POST /v1/run; the first run makes the python profile's golden snapshot)"
tfc run --language python -e 'import sys, platform; print(sys.version); print(platform.uname().release)'
start=$(date +%s%N)
tfc run --language python -e 'print(sum(range(10**6)))'
echo "   (second run $(( ($(date +%s%N) - start) / 1000000 )) ms including CLI start-up)"
echo "== stopping the daemon"
