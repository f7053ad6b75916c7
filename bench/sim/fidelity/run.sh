#!/usr/bin/env bash
# Simulator fidelity on our own cluster (issue 6): `tandem profile` measures this machine's engine, then
# the same rate sweep of the same requests runs twice —
#   measured:  `tandem bench --rates` against a real router + 1 prefill + 1 decode worker (separate
#              processes, one CPU thread each, the `small` preset), and
#   simulated: `tandem sim --rates` of 1 prefill + 1 decode instance with the profile as both
#              instances' latency model and the workers' limits (batch tokens, batch size, KV capacity)
# and compare.py puts attainment and P90 TTFT/TPOT side by side.
#
#   bash bench/sim/fidelity/run.sh [build-dir]     # writes bench/sim/fidelity/$PRESET/
#
# Knobs (environment): PRESET (the model: medium, or small), RATES, NUM (requests per rate),
# TTFT_SLO_MS, TPOT_SLO_MS, KV_CACHE_MB, MAX_TOTAL, SEED,
# KV_GBPS / KV_LATENCY_MS (the KV link the simulator charges per pull: gRPC over loopback, from
# bench/kv_transfer.md, since `tandem profile` alone would time an in-process memcpy).
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:-build}
tandem=$build/cli/tandem
preset=${PRESET:-medium}
out=bench/sim/fidelity/$preset
mkdir -p "$out"
case $preset in  # defaults that put the knee mid-sweep (chosen from a simulation, before measuring)
  small) rates=${RATES:-4,6,8,9,10,11,12}; ttft_slo=${TTFT_SLO_MS:-500}; tpot_slo=${TPOT_SLO_MS:-25}
         kv_cache_mb=${KV_CACHE_MB:-64}; profile_max_prompt=1024 ;;
  *) rates=${RATES:-1,1.5,1.75,2,2.25,2.5}; ttft_slo=${TTFT_SLO_MS:-1500}; tpot_slo=${TPOT_SLO_MS:-50}
     kv_cache_mb=${KV_CACHE_MB:-256}; profile_max_prompt=512 ;;
esac
num=${NUM:-200}
max_total=${MAX_TOTAL:-512}
seed=${SEED:-1}
kv_gbps=${KV_GBPS:-1.0}
kv_latency=${KV_LATENCY_MS:-0.5}
max_batch_tokens=2048  # the prefill worker's --max-batch-tokens
max_prefill_batch=64   # its prompts per forward pass (PrefillEngineOptions::max_batch)
max_batch=256
python=/usr/bin/python3  # Debian's (the first python3 on PATH may be another one)

work=$(mktemp -d -t tandem-fidelity.XXXXXX)
model=$work/$preset
"$tandem" mkmodel --preset "$preset" --out "$model" --seed 0 2>/dev/null

# 1. Profile: one thread, as each worker runs, twice —
#    alone:      nothing else running (what `tandem profile` measures on an idle machine), and
#    co-located: while another `tandem profile` loops on the other core, as the prefill and the decode
#                worker share this 2-core machine (and its L3 cache and memory bus) in the cluster.
profile=("$tandem" profile --model "$model" --threads 1 --kv-bandwidth-gbps "$kv_gbps" --kv-latency-ms "$kv_latency"
         --max-prompt "$profile_max_prompt" --max-batch 32 --quiet)
"${profile[@]}" --out "$out/latency_model_alone.json" > "$out/profile_alone.txt" 2>&1
( while :; do "${profile[@]}" --out "$work/co-runner.json" > /dev/null 2>&1; done ) &
co_runner=$!
sleep 2
"${profile[@]}" --out "$out/latency_model.json" > "$out/profile.txt" 2>&1
kill "$co_runner"; wait "$co_runner" 2>/dev/null || true
pkill -f "$work/co-runner.json" 2>/dev/null || true

# 2. One workload for both: chat-shaped (ShareGPT) lengths and Poisson arrivals at 1 req/s from the
#    simulator's own generator, written as a trace (arrival_s,prompt_len,output_len) that `tandem bench`
#    and `tandem sim` both read, scale to each rate and clip to MAX_TOTAL tokens the same way.
"$tandem" sim --profiles "$out/latency_model.json" --workload sharegpt --num_requests "$num" --seed "$seed" \
    --seeds 1 --rate 1 --output_records "$work/base.jsonl" > /dev/null
"$python" - "$work/base.jsonl" "$out/trace.csv" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
with open(sys.argv[2], "w") as f:
    f.write("arrival_s,prompt_len,output_len\n")
    for r in sorted(rows, key=lambda r: r["id"]):
        f.write(f'{r["arrival_s"]:.9f},{r["prompt_len"]},{r["output_len"]}\n')
EOF
kv_bytes=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['kv_transfer']['kv_bytes_per_token'])" \
           "$out/latency_model.json")
kv_capacity=$(( kv_cache_mb * 1024 * 1024 / ${kv_bytes%.*} ))

# 3. Simulated sweeps, one per profile.
for variant in "" _alone; do
  "$tandem" sim --profiles "$out/latency_model$variant.json" --trace "$out/trace.csv" \
      --trace_max_total_tokens "$max_total" --rates "$rates" --num_prefill 1 --num_decode 1 \
      --placement_policy least_loaded --prefill_max_batch_tokens "$max_batch_tokens" \
      --prefill_max_batch_size "$max_prefill_batch" --decode_max_batch_size "$max_batch" \
      --kv_capacity_tokens "$kv_capacity" --ttft_slo_ms "$ttft_slo" --tpot_slo_ms "$tpot_slo" \
      --output_summary "$out/simulated$variant.json" > "$out/simulated$variant.txt"
done

# 4. Measured sweep against a real cluster.
daemon_log=$work/daemons.log
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
}
trap cleanup EXIT
start() {  # log-name args... ; sets $addr
  local log=$work/$1.out; shift
  "$tandem" "$@" > "$log" 2>>"$daemon_log" &
  pids+=($!)
  for _ in $(seq 1 300); do grep -q "listening on" "$log" && break; sleep 0.1; done
  addr=$(sed -n 's/^listening on //p' "$log")
  [[ -n $addr ]] || { echo "$1 did not start; see $daemon_log" >&2; exit 1; }
}
common=(--model "$model" --port 0 --metrics-port 0 --threads 1 --kv-cache-mb "$kv_cache_mb" --log-level warning)
start prefill prefill "${common[@]}" --id prefill-0 --max-batch-tokens "$max_batch_tokens"
prefill=$addr
start decode decode "${common[@]}" --id decode-0 --max-batch "$max_batch"
decode=$addr
start router router --model "$model" --port 0 --prefill "$prefill" --decode "$decode" --policy least_loaded \
    --log-level warning
router=$addr
"$tandem" bench --router "$router" --trace "$out/trace.csv" --max-total-tokens "$max_total" --rates "$rates" \
    --ttft-slo-ms "$ttft_slo" --tpot-slo-ms "$tpot_slo" --out "$out/measured.json" > "$out/measured.txt" 2>&1
# The workers' own step times over the whole sweep (their /metrics), next to what the profile predicts.
for role in prefill decode; do
  echo "== $role worker /metrics after the sweep"
  curl -s "http://$(sed -n 's/^metrics on //p' "$work/$role.out")/metrics" |
      grep -E '^tandem_(engine_step_seconds_(sum|count)|decode_tokens_total|prefill_batches_total)'
done > "$out/worker_metrics.txt"
cleanup
pids=()

# 5. Side by side.
{
  echo "== simulated with the co-located profile (latency_model.json)"
  "$python" bench/sim/fidelity/compare.py "$out/measured.json" "$out/simulated.json"
  echo
  echo "== simulated with the profile taken alone (latency_model_alone.json)"
  "$python" bench/sim/fidelity/compare.py "$out/measured.json" "$out/simulated_alone.json"
} | tee "$out/comparison.txt"
