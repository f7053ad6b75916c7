#!/usr/bin/env bash
# Correction factors for a profile, measured with nothing queued: a real router + 1 prefill + 1 decode
# worker (as run.sh starts them) serves NUM requests of the preset's trace.csv one at a time
# (--max-concurrency 1: every prefill batch is one prompt, every decode batch one sequence, no prefill
# runs beside a decode). For each request, the router's prefill compute time over the profile's
# PrefillMs(prompt), and its decode time per token over the profile's batch-1 DecodeStepMs at the
# request's mean context; the medians are the factors (`tandem sim --prefill_correction
# --decode_correction`). The workers' own step-time sums (/metrics) are printed beside them.
#
#   PRESET=medium bash bench/sim/fidelity/calibrate.sh [build-dir]   # writes $PRESET/correction.json
set -euo pipefail
cd "$(dirname "$0")/../../.."
t=${1:-build}/cli/tandem
preset=${PRESET:-medium}
out=bench/sim/fidelity/$preset
profile=${PROFILE:-$out/latency_model_alone.json}
num=${NUM:-30}
case $preset in small) kv_cache_mb=64 ;; *) kv_cache_mb=256 ;; esac
w=$(mktemp -d -t tandem-calibrate.XXXXXX)
m=$w/$preset
"$t" mkmodel --preset "$preset" --out "$m" --seed 0 2>/dev/null
common=(--model "$m" --port 0 --metrics-port 0 --threads 1 --kv-cache-mb "$kv_cache_mb" --log-level warning)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
start() {  # name args... ; sets $addr
  local name=$1; shift
  "$t" "$@" > "$w/$name.out" 2>>"$w/daemons.log" &
  pids+=($!)
  for _ in $(seq 1 300); do grep -q "listening on" "$w/$name.out" && break; sleep 0.1; done
  addr=$(sed -n 's/^listening on //p' "$w/$name.out")
  [[ -n $addr ]] || { echo "$name did not start; see $w/daemons.log" >&2; exit 1; }
}
start prefill prefill "${common[@]}" --id prefill-0
prefill=$addr
start decode decode "${common[@]}" --id decode-0
decode=$addr
start router router --model "$m" --port 0 --prefill "$prefill" --decode "$decode" --log-level warning
"$t" bench --router "$addr" --trace "$out/trace.csv" --max-total-tokens 512 --rate 100 --max-concurrency 1 \
    --num-prompts "$num" --out "$w/solo.json" > "$w/solo.txt" 2>&1
for role in prefill decode; do
  curl -s "http://$(sed -n 's/^metrics on //p' "$w/$role.out")/metrics" |
      grep -E '^tandem_(engine_step_seconds_(sum|count)|decode_tokens_total)'
done
/usr/bin/python3 - "$w/solo.json" "$profile" "$out/correction.json" <<'EOF'
import json, statistics, sys
run = json.load(open(sys.argv[1]))
lm = json.load(open(sys.argv[2]))
p = lm["prefill"]
small = lm["decode_small"] if lm["bs_threshold"] > 1 else lm["decode_large"]
prefill, decode, ctx = [], [], []
for r in run["requests"]:
    if r["status"] != "OK":
        continue
    t, l, n = r["router"]["timing"], r["input_len"], r["output_len"]
    prefill.append(t["prefill_compute_ms"] / (p["a"] + p["b"] * l + p["c"] * l * l))
    if n > 5:
        mid = l + n / 2
        decode.append(t["decode_compute_ms"] / (n - 1) / (small["a"] + small["b"] * mid + small["c"]))
        ctx.append(mid)
result = {"prefill_correction": round(statistics.median(prefill), 4),
          "decode_correction": round(statistics.median(decode), 4),
          "requests": len(prefill), "decode_requests": len(decode),
          "mean_decode_context": round(statistics.mean(ctx), 1), "profile": sys.argv[2]}
json.dump(result, open(sys.argv[3], "w"), indent=2)
print(json.dumps(result, indent=2))
EOF
