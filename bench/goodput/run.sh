#!/usr/bin/env bash
# Goodput experiment (issue 5): one prefill worker and two decode workers of unequal speed — decode-fast
# on the CPU fast path, decode-slow on the plain-loop reference backend (same model, same answers,
# several times slower per step, like a weaker accelerator) — and the same chat-shaped workload with
# TTFT/TPOT SLOs sent at the same rates to a router running each placement policy in turn.
#
#   bash bench/goodput/run.sh [build-dir]      # writes bench/goodput/*.txt and *.json
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
tandem=$build/cli/tandem
out=bench/goodput
model=$(mktemp -d)/small
"$tandem" mkmodel --preset small --out "$model" --seed 0 2>/dev/null
"$tandem" profile --model "$model" --threads 1 --out "$out/latency_model.json" --quiet > "$out/profile.txt" 2>&1

rates=${RATES:-2,4,6,8}
slo=(--ttft-slo-ms 1000 --tpot-slo-ms 25)
daemon_log=$(mktemp -t tandem-goodput-daemons.XXXXXX)  # the daemons' stderr, for a failed run
# start() runs inside $(...), a subshell, so the daemons' pids go through a file.
pidfile=$(mktemp -t tandem-goodput-pids.XXXXXX)
cleanup() {
  while read -r p; do kill -TERM "$p" 2>/dev/null || true; done < "$pidfile"
  while read -r p; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done < "$pidfile"
  : > "$pidfile"
}
trap cleanup EXIT
start() {  # name args... ; prints the address
  local log; log=$(mktemp)
  "$tandem" "$@" > "$log" 2>>"$daemon_log" &
  echo $! >> "$pidfile"
  for _ in $(seq 1 200); do grep -q "listening on" "$log" && break; sleep 0.1; done
  sed -n 's/^listening on //p' "$log"
}
for policy in round_robin least_loaded goodput; do
  common=(--model "$model" --port 0 --threads 1 --kv-cache-mb 64 --log-level warning)
  prefill=$(start prefill "${common[@]}" --id prefill-0)
  fast=$(start decode "${common[@]}" --id decode-fast)
  slow=$(start decode "${common[@]}" --id decode-slow --backend cpu-reference)
  extra=()
  [[ $policy == goodput ]] && extra=(--latency-model "$out/latency_model.json")
  router=$(start router --model "$model" --port 0 --prefill "$prefill" --decode "$fast,$slow" \
           --policy "$policy" "${extra[@]}" --log-level warning)
  "$tandem" bench --router "$router" --dataset chat --max-total-tokens 512 --num-prompts 60 --seed 1 \
      --rates "$rates" "${slo[@]}" --out "$out/$policy.json" > "$out/$policy.txt" 2>&1
  cleanup
done
for policy in round_robin least_loaded goodput; do
  echo "== $policy"; sed -n '/^Rate(req\/s)/,$p' "$out/$policy.txt"
done
