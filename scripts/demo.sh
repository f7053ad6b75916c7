#!/usr/bin/env bash
# Installs what is needed, builds, makes the embedded default model on first use, and answers real
# requests with it.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] && bash scripts/install-deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTANDEM_BUILD_TESTS=OFF -DTANDEM_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target tandem
tandem="$build/cli/tandem"
model=${TANDEM_MODEL:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem/models/small}
if [[ ! -f $model/model.safetensors ]]; then
  mkdir -p "$(dirname "$model")"
  "$tandem" mkmodel --preset small --out "$model"
fi
for prompt in "The quick brown fox" "Once upon a time, in a small village," "def fibonacci(n):"; do
  echo "### prompt: $prompt"
  "$tandem" run --model "$model" --prompt "$prompt" --max-tokens 32 --temperature 0.8 --seed 1
done
