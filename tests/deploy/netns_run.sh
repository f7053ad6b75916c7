#!/usr/bin/env bash
# deploy/compose.yaml's cpu profile run for real, without a container engine: every replica of every
# service in a network namespace of its own on a bridge, names resolved as Compose's DNS does, the
# router's ports published; requests, decode scaled 1 -> 3 -> 1, a worker killed and restarted by its
# restart policy (compose_netns.mjs has the details). ctest runs this (tests/CMakeLists.txt).
#
#   bash tests/deploy/netns_run.sh TANDEM_BINARY [WORKDIR]
#
# Exit 77 (ctest: skipped, with the reason printed) when not root, when `ip netns add` fails, when node or
# npm is missing, or when the npm packages cannot be installed from the lock file. Whatever happens
# (failure, Ctrl-C, a node process that died), the namespaces, links, /etc/netns entries and processes
# of this run (named after this shell's pid) are removed on exit.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[[ $# -ge 1 ]] || { echo "usage: bash tests/deploy/netns_run.sh TANDEM_BINARY [WORKDIR]"; exit 2; }
tandem=$(realpath "$1")
work=${2:-${TMPDIR:-/tmp}/tandem-compose-netns}
mkdir -p "$work" && work=$(realpath "$work")
[[ -x $tandem ]] || { echo "not an executable: $tandem"; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (network namespaces, a bridge, veth links)"; exit 77; }
command -v ip >/dev/null || { echo "SKIP: ip (iproute2) not found"; exit 77; }
prefix=td$$

cleanup() {
  local ns pid link
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${prefix}-"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^${prefix}"); do
    ip link del "$link" 2>/dev/null
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${prefix}-"); do ip netns del "$ns" 2>/dev/null; done
  rm -rf /etc/netns/"${prefix}"-* 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! out=$(ip netns add "${prefix}-probe" 2>&1); then
  echo "SKIP: ip netns add failed: $out"; exit 77
fi
ip netns del "${prefix}-probe"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP: node/npm not found"; exit 77
fi
if [[ ! -d $here/node_modules/yaml || $here/package-lock.json -nt $here/node_modules/.package-lock.json ]]; then
  if ! (cd "$here" && npm ci --no-audit --no-fund >"$work/npm.log" 2>&1); then
    cat "$work/npm.log"; echo "SKIP: npm ci failed (no registry?)"; exit 77
  fi
fi
node "$here/compose_netns.mjs" "$here/../.." "$tandem" "$work" "$prefix" &
child=$!
trap 'kill -INT $child 2>/dev/null; wait $child; exit 130' INT
trap 'kill -TERM $child 2>/dev/null; wait $child; exit 143' TERM
wait $child
