#!/usr/bin/env bash
# Offline validation of deploy/ (no container engine, no cluster): compose.yaml against the Compose
# specification's JSON schema (../shared/testdata/schemas; that step is skipped with a message when it is
# absent), every Kustomize build under deploy/k8s (base and overlays, patches applied) against
# Kubernetes' schemas (kubernetes-models), the cross-references between them, the flags passed to
# `tandem` against `tandem SUB --help` of the binary given, the metrics the Grafana dashboard queries
# against the sources, and negative checks proving each kind of mistake is caught (validate.mjs).
# `docker compose config` runs too where the docker client has the compose plugin.
# ctest runs this (tests/CMakeLists.txt).
#
#   bash tests/deploy/run.sh TANDEM_BINARY [WORKDIR]
#
# Exit 77 (ctest: skipped, with the reason printed) when node or npm is missing or the npm packages
# cannot be installed from the lock file (no registry); any failed check fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[[ $# -ge 1 ]] || { echo "usage: bash tests/deploy/run.sh TANDEM_BINARY [WORKDIR]"; exit 2; }
tandem=$(realpath "$1")
work=${2:-${TMPDIR:-/tmp}/tandem-deploy-test}
mkdir -p "$work"
[[ -x $tandem ]] || { echo "not an executable: $tandem"; exit 1; }
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP: node/npm not found"; exit 77
fi
if [[ ! -d $here/node_modules/kubernetes-models || $here/package-lock.json -nt $here/node_modules/.package-lock.json ]]; then
  if ! (cd "$here" && npm ci --no-audit --no-fund >"$work/npm.log" 2>&1); then
    cat "$work/npm.log"; echo "SKIP: npm ci failed (no registry?)"; exit 77
  fi
fi
exec node "$here/validate.mjs" "$here/../.." "$tandem"
