#!/usr/bin/env bash
# In-situ decode step with nothing else running: 1 prefill + 1 decode + router on the medium preset,
# 25 requests of medium/trace.csv sent one at a time (--max-concurrency 1: batch 1, no prefill beside
# the decode), then the decode worker's own step-time sum (/metrics) and the per-token decode time the
# router reports, to set against the profile's batch-1 step at the same context.
#   bash bench/sim/fidelity/decode_solo.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/../../.."
t=${1:-build}/cli/tandem
w=$(mktemp -d); m=$w/medium
$t mkmodel --preset medium --out $m --seed 0 2>/dev/null
common=(--model $m --port 0 --threads 1 --kv-cache-mb 256 --log-level warning)
$t prefill "${common[@]}" --id prefill-0 --metrics-port 0 > $w/p.out 2>&1 & P=$!
$t decode "${common[@]}" --id decode-0 --metrics-port 0 > $w/d.out 2>&1 & D=$!
sleep 3
pa=$(sed -n 's/^listening on //p' $w/p.out); da=$(sed -n 's/^listening on //p' $w/d.out); dm=$(sed -n 's/^metrics on //p' $w/d.out)
$t router --model $m --port 0 --prefill $pa --decode $da --log-level warning > $w/r.out 2>&1 & R=$!
sleep 2
ra=$(sed -n 's/^listening on //p' $w/r.out)
$t bench --router $ra --trace bench/sim/fidelity/medium/trace.csv --max-total-tokens 512 --rate 100 --max-concurrency 1 --num-prompts 25 --out $w/b.json > $w/b.out 2>&1
curl -s http://$dm/metrics | grep -E "^tandem_(engine_step_seconds_(sum|count)|decode_tokens_total)"
/usr/bin/python3 - $w/b.json <<'PY'
import json,sys,statistics as st
d=json.load(open(sys.argv[1]))
rs=[r for r in d['requests'] if r['output_len']>5]
print("decode compute per token (router timing):", st.mean(r['router']['timing']['decode_compute_ms']/(r['output_len']-1) for r in rs))
print("client TPOT mean:", st.mean(r['tpot_ms'] for r in rs), " n:", len(rs))
print("mean ctx:", st.mean(r['input_len']+r['output_len']/2 for r in rs))
PY
kill $P $D $R; wait 2>/dev/null || true
