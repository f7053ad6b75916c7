#!/usr/bin/env bash
# Where the CPU goes in the fidelity cluster: the same 1 prefill + 1 decode + router as run.sh, one
# `tandem bench` run at RATE (default 8) req/s over trace.csv, and each process's CPU seconds (from
# /proc/PID/stat) and the workers' own step-time sums (from /metrics) over that run.
#   RATE=8 bash bench/sim/fidelity/cpu_share.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/../../.."
t=${1:-build}/cli/tandem
w=$(mktemp -d); m=$w/small
$t mkmodel --preset small --out $m --seed 0 2>/dev/null
common=(--model $m --port 0 --threads 1 --kv-cache-mb 64 --log-level warning)
$t prefill "${common[@]}" --id prefill-0 --metrics-port 0 > $w/p.out 2>&1 & P=$!
$t decode "${common[@]}" --id decode-0 --metrics-port 0 > $w/d.out 2>&1 & D=$!
sleep 3
pa=$(sed -n 's/^listening on //p' $w/p.out); da=$(sed -n 's/^listening on //p' $w/d.out)
dm=$(sed -n 's/^metrics on //p' $w/d.out); pm=$(sed -n 's/^metrics on //p' $w/p.out)
$t router --model $m --port 0 --prefill $pa --decode $da --log-level warning > $w/r.out 2>&1 & R=$!
sleep 2
ra=$(sed -n 's/^listening on //p' $w/r.out)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
p0=$(cpu $P); d0=$(cpu $D); r0=$(cpu $R); s0=$(date +%s.%N)
TIMEFORMAT="bench cpu user %U sys %S wall %R"
{ time $t bench --router $ra --trace bench/sim/fidelity/small/trace.csv --max-total-tokens 512 --rates ${RATE:-8} --num-prompts 200 > $w/b.out 2>&1; } 2>$w/time.out
s1=$(date +%s.%N)
echo "wall $(awk "BEGIN{print $s1 - $s0}")  cpu ticks(1/100s): prefill $(( $(cpu $P)-p0 )) decode $(( $(cpu $D)-d0 )) router $(( $(cpu $R)-r0 ))"; tail -1 $w/time.out
curl -s http://$dm/metrics | grep -E "step_seconds_(sum|count)|tokens_total" | grep -v "^#"
curl -s http://$pm/metrics | grep -E "step_seconds_(sum|count)" | grep -v "^#"
grep -E "Attainment both|P90 TPOT|Decode compute" $w/b.out
kill $P $D $R; wait 2>/dev/null || true
