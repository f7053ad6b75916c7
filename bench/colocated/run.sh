#!/usr/bin/env bash
# Colocated vs disaggregated on the same cores, measured and simulated (not in CI; results in
# bench/colocated_vs_disaggregated.md).
#
#   bash bench/colocated/run.sh [TANDEM_BINARY] [WORKDIR]
#
# One chat-shaped trace (Poisson arrivals; prompt 32-384 and output 16-160 tokens, log-uniform, fixed
# seed) is replayed at each rate in RATES against two clusters of two single-thread workers each, started
# one after the other with `tandem up`: (a) two colocated workers (--step-token-budget BUDGET), (b) one
# prefill and one decode worker. `tandem bench --trace` sends the same requests to both with the same
# TTFT/TPOT SLOs. Predicted: `tandem sim --trace` of the same trace on a `tandem profile` of the same
# model (one thread), for both placements, with the router's policy (least_loaded).
#
# Environment: RATES ("4,8,16,32"), REQUESTS (150), TTFT_SLO_MS (250), TPOT_SLO_MS (15), BUDGET (256),
# BACKEND_FLAGS ("--threads 1"), MODEL (default: the embedded default model).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tandem=$(realpath "${1:-$root/build/cli/tandem}")
work=${2:-${TMPDIR:-/tmp}/tandem-colocated-bench}
mkdir -p "$work" && work=$(realpath "$work")
RATES=${RATES:-4,8,16,32}
REQUESTS=${REQUESTS:-150}
TTFT_SLO_MS=${TTFT_SLO_MS:-250}
TPOT_SLO_MS=${TPOT_SLO_MS:-15}
BUDGET=${BUDGET:-256}
BACKEND_FLAGS=${BACKEND_FLAGS:-"--threads 1"}
MODEL=${MODEL:-${TANDEM_MODEL_CACHE:-$HOME/.cache/tandem/models}/small}
[ -f "$MODEL/config.json" ] || "$tandem" run --prompt hi --max-tokens 1 >/dev/null 2>&1  # makes the default

python3 - "$work/trace.csv" "$REQUESTS" <<'PY'
import math, random, sys
rng = random.Random(7)
t = 0.0
with open(sys.argv[1], "w") as f:
    f.write("arrival_s,prompt_len,output_len\n")
    for _ in range(int(sys.argv[2])):
        t += rng.expovariate(1.0)  # rate 1; bench and sim rescale to each --rates value
        p = int(math.exp(rng.uniform(math.log(32), math.log(384))))
        o = int(math.exp(rng.uniform(math.log(16), math.log(160))))
        f.write(f"{t:.6f},{p},{o}\n")
PY

echo "== profile" >&2
"$tandem" profile --model "$MODEL" $BACKEND_FLAGS --max-prompt 512 --max-batch 32 --repeats 2 --quiet \
  --out "$work/profile.json" >/dev/null

run_cluster() {  # name, up flags...
  local name=$1; shift
  echo "== $name" >&2
  "$tandem" up --model "$MODEL" --port 0 --http-port -1 --log-level warning $BACKEND_FLAGS "$@" \
    > "$work/$name.up" 2> "$work/$name.up.err" &
  local pid=$!
  local router=""
  for _ in $(seq 1 120); do
    router=$(sed -n 's/^tandem cluster up: router at \([^ ]*\).*/\1/p' "$work/$name.up")
    [ -n "$router" ] && break
    sleep 0.5
  done
  [ -n "$router" ] || { cat "$work/$name.up.err" >&2; kill $pid; return 1; }
  "$tandem" bench --router "$router" --trace "$work/trace.csv" --rates "$RATES" --num-prompts "$REQUESTS" \
    --ttft-slo-ms "$TTFT_SLO_MS" --tpot-slo-ms "$TPOT_SLO_MS" --num-gpus 2 --progress=false \
    --out "$work/$name.json" > "$work/$name.bench" 2>&1
  kill -INT $pid; wait $pid || true
  cat "$work/$name.bench"
}
run_cluster colocated --colocated 2 --step-token-budget "$BUDGET"
run_cluster disaggregated --prefill 1 --decode 1

for placement in colocated disaggregated; do
  echo "== sim $placement" >&2
  if [ $placement = colocated ]; then
    flags=(--num-colocated 2 --colocated-profiles "$work/profile.json" --colocated-step-token-budget "$BUDGET")
  else
    flags=(--num-prefill 1 --num-decode 1)
  fi
  "$tandem" sim --mode simulate --profiles "$work/profile.json" "${flags[@]}" --trace "$work/trace.csv" \
    --rates "$RATES" --num-requests "$REQUESTS" --seeds 1 --ttft-slo-ms "$TTFT_SLO_MS" \
    --tpot-slo-ms "$TPOT_SLO_MS" --placement-policy least_loaded > "$work/sim-$placement.txt" 2>&1 || true
  cat "$work/sim-$placement.txt"
done
