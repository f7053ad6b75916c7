#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (what CI runs, via .ci/run).
#   bash scripts/test.sh            # build/ under the repo
#   BUILD_DIR=/tmp/b bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) == 0 ]]; then
  bash scripts/install-deps.sh
else
  echo "test.sh: not root; assuming scripts/install-deps.sh has been run"
fi
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTANDEM_BUILD_TESTS=ON -DTANDEM_BUILD_BENCH=ON
cmake --build "$build" -j "$(nproc)"
# GPU tests carry the label `gpu` and skip themselves without a device; run everything.
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 900
# libFuzzer targets (fuzz/): a clang build, then 10 s of fuzzing each. Required where install-deps ran.
TANDEM_FUZZ_REQUIRED=$([[ $(id -u) == 0 ]] && echo 1 || echo 0) bash fuzz/run.sh "${FUZZ_SECONDS:-10}" "$build-fuzz"
