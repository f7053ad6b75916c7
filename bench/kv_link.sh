#!/usr/bin/env bash
# KV hand-off over a rate-shaped link, against `tandem sim`'s link model (not in CI; results in kv_link.md).
#
#   sudo bash bench/kv_link.sh [TANDEM_BINARY] [WORKDIR]
#
# Two network namespaces joined by one veth pair, as two hosts on one wire: PREFIX-prefill (prefill worker
# + router + the client) and PREFIX-decode (decode worker). Both ends of the link are shaped with tc tbf
# (this kernel has no netem: no added delay), one rate at a time: unshaped, 1 Gbit/s, 10 Gbit/s. For each
# rate and prompt length the client sends REPEATS requests (one at a time, after one warm-up, fresh
# random token ids each, max_tokens 2) and records the router's Final timing kv_transfer_ms (the decode
# worker's wall time of its PullKv call) and the bytes the decode log says it pulled. A raw TCP copy of
# 32 MiB over the same link (python3) shows what the shaped wire itself gives.
#
# Predicted: `tandem sim` on a `tandem profile` of the same model with --kv-bandwidth-gbps set to the link
# rate (GB/s = Gbit/s / 8; unshaped: the in-process memcpy `tandem profile` measures when it is 0), one
# request per prompt length, far apart; its per-request kv_transfer_ms (--output-records) is
# latency_ms + prompt_len * kv_bytes_per_token / bandwidth_bytes_per_s (router/policy/latency_model.cc,
# KvTransferMs), with latency_ms 0 as `tandem profile` writes it by default.
#
# Environment: PRESET (medium: 16 KiB of f32 K+V per token), LENGTHS ("128 512 1024 2000"), LINKS
# ("unshaped 1gbit 10gbit"), REPEATS (7), THREADS (1 per worker). Needs root, iproute2 with tc, python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tandem=$(realpath "${1:-$root/build/cli/tandem}")
work=${2:-${TMPDIR:-/tmp}/tandem-kv-link}
mkdir -p "$work" && work=$(realpath "$work")
PRESET=${PRESET:-medium}
LENGTHS=${LENGTHS:-"128 512 1024 2000"}
LINKS=${LINKS:-"unshaped 1gbit 10gbit"}
REPEATS=${REPEATS:-7}
THREADS=${THREADS:-1}
[[ $(id -u) -eq 0 ]] || { echo "needs root (network namespaces, tc)"; exit 1; }
[[ -x $tandem ]] || { echo "not an executable: $tandem"; exit 1; }
command -v python3 >/dev/null || { echo "needs python3"; exit 1; }

prefix=tk$$
nsP=$prefix-prefill
nsD=$prefix-decode
ifP=${prefix}p
ifD=${prefix}d
cleanup() {
  local ns pid
  for ns in $nsP $nsD; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  sleep 0.5
  for ns in $nsP $nsD; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

x=$((30 + $$ % 200))
while ip -4 route show | grep -q "10\.214\.$x\."; do x=$(((x + 1) % 250)); done
ipP=10.214.$x.1
ipD=10.214.$x.2
ip netns add "$nsP"
ip netns add "$nsD"
ip link add "$ifP" netns "$nsP" type veth peer name "$ifD" netns "$nsD"
ip -n "$nsP" addr add "$ipP/24" dev "$ifP"
ip -n "$nsD" addr add "$ipD/24" dev "$ifD"
for ns in $nsP $nsD; do ip -n "$ns" link set lo up; done
ip -n "$nsP" link set "$ifP" up
ip -n "$nsD" link set "$ifD" up

shape() {  # shape LINK: both directions of the wire
  local link=$1 ns dev
  for pair in "$nsP $ifP" "$nsD $ifD"; do
    read -r ns dev <<<"$pair"
    tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null || true
    case $link in
      unshaped) ;;
      # burst: 2 ms at the rate (tbf needs at least one 64 KiB GSO segment; more keeps the timer rate low)
      1gbit) tc -n "$ns" qdisc add dev "$dev" root tbf rate 1gbit burst 256kb latency 100ms ;;
      10gbit) tc -n "$ns" qdisc add dev "$dev" root tbf rate 10gbit burst 2500kb latency 100ms ;;
      *) echo "unknown link $link"; exit 1 ;;
    esac
  done
}
gbytes_per_s() { case $1 in 1gbit) echo 0.125 ;; 10gbit) echo 1.25 ;; unshaped) echo 0 ;; esac; }

model=$work/model-$PRESET
[[ -f $model/model.safetensors ]] || "$tandem" mkmodel --preset "$PRESET" --out "$model" >/dev/null
vocab=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$model/config.json")

# ---- predictions: tandem profile (its kv_transfer fields) + tandem sim (its KV link)
printf 'arrival_s,prompt_len,output_len\n' >"$work/trace.csv"
t=0
for n in $LENGTHS; do printf '%d,%d,2\n' $t "$n" >>"$work/trace.csv"; t=$((t + 100)); done
for link in $LINKS; do
  "$tandem" profile --model "$model" --threads 1 --out "$work/profile-$link.json" --max-prompt 64 --max-batch 2 \
    --repeats 1 --kv-bandwidth-gbps "$(gbytes_per_s "$link")" --quiet >"$work/profile-$link.log" 2>&1
  "$tandem" sim --profiles "$work/profile-$link.json" --colocated-profiles "$work/profile-$link.json" \
    --trace "$work/trace.csv" --kv-capacity-tokens 1000000 --output-records "$work/sim-$link.jsonl" \
    --progress=false >"$work/sim-$link.log" 2>&1
done

# ---- the cluster: prefill + router on one side of the wire, decode on the other
rm -f "$work"/*.cluster.log
ip netns exec "$nsP" "$tandem" prefill --model "$model" --host 0.0.0.0 --port 50051 --threads "$THREADS" \
  --kv-cache-mb 256 >"$work/prefill.cluster.log" 2>&1 &
ip netns exec "$nsD" "$tandem" decode --model "$model" --host 0.0.0.0 --port 50052 --threads "$THREADS" \
  --kv-cache-mb 256 --kv-transfer-timeout-ms 30000 >"$work/decode.cluster.log" 2>&1 &
ip netns exec "$nsP" "$tandem" router --model "$model" --host 127.0.0.1 --port 8000 --http-port 8080 \
  --prefill "$ipP:50051" --decode "$ipD:50052" >"$work/router.cluster.log" 2>&1 &
for _ in $(seq 1 120); do
  ip netns exec "$nsP" "$tandem" health --addr 127.0.0.1:8000 --quiet >/dev/null 2>&1 && break
  sleep 0.5
done
ip netns exec "$nsP" "$tandem" health --addr 127.0.0.1:8000 || { tail -20 "$work"/*.cluster.log; exit 1; }

cat >"$work/client.py" <<'PY'
import json, random, sys, urllib.request
url, vocab, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lengths = [int(n) for n in sys.argv[4].split()]
rng = random.Random()
for n in lengths:
    for i in range(repeats + 1):  # the first is a warm-up
        body = {"prompt": [rng.randrange(3, vocab - 3) for _ in range(n)], "max_tokens": 2, "ignore_eos": True}
        req = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
        t = json.load(urllib.request.urlopen(req, timeout=120))["tandem"]
        print(n, i, t["request_id"], t["timing"]["kv_transfer_ms"], t["timing"]["prefill_compute_ms"], flush=True)
PY
cat >"$work/tcp.py" <<'PY'
import socket, sys, time
mode, host, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "recv":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((host, 5201)); s.listen(1)
    c, _ = s.accept(); got = 0; buf = bytearray(1 << 20)
    while got < n:
        k = c.recv_into(buf)
        if not k: break
        got += k
    c.sendall(b"x")
else:
    c = socket.create_connection((host, 5201)); data = b"\0" * (1 << 20); t0 = time.time()
    for _ in range(n >> 20): c.sendall(data)
    c.recv(1); print(f"{n * 8 / (time.time() - t0) / 1e9:.2f}")
PY

: >"$work/measured.tsv"
: >"$work/tcp.tsv"
for link in $LINKS; do
  shape "$link"
  ip netns exec "$nsD" python3 "$work/tcp.py" recv "$ipD" $((32 << 20)) &
  sleep 0.5
  gbit=$(ip netns exec "$nsP" python3 "$work/tcp.py" send "$ipD" $((32 << 20)))
  wait $!
  echo "$link $gbit" >>"$work/tcp.tsv"
  echo "== $link (raw TCP over the link: $gbit Gbit/s)"
  ip netns exec "$nsP" python3 "$work/client.py" http://127.0.0.1:8080/v1/completions "$vocab" "$REPEATS" "$LENGTHS" |
  while read -r n i rid ms prefill_ms; do
    bytes=$(sed -n "s/.*req=$rid pulled \([0-9]*\) bytes.*/\1/p" "$work/decode.cluster.log" | head -1)
    [[ $i -gt 0 ]] && printf '%s\t%s\t%s\t%s\t%s\n' "$link" "$n" "${bytes:-?}" "$ms" "$rid" >>"$work/measured.tsv"
    printf '  %5d tokens #%d: %s bytes, kv_transfer %s ms (prefill %s ms)\n' "$n" "$i" "${bytes:-?}" "$ms" "$prefill_ms"
  done
done
shape unshaped

python3 - "$work" "$LINKS" <<'PY' | tee "$work/kv_link_table.md"
import json, statistics, sys, collections
work, links = sys.argv[1], sys.argv[2].split()
tcp = dict(line.split() for line in open(f"{work}/tcp.tsv"))
rows = collections.defaultdict(list)
bytes_of = {}
for line in open(f"{work}/measured.tsv"):
    link, n, b, ms, rid = line.split("\t")
    rows[(link, int(n))].append(float(ms))
    bytes_of[(link, int(n))] = b
pred = {}
for link in links:
    prof = json.load(open(f"{work}/profile-{link}.json"))
    bw = prof["kv_transfer"]["bandwidth_bytes_per_s"]
    for line in open(f"{work}/sim-{link}.jsonl"):
        r = json.loads(line)
        pred[(link, r["prompt_len"])] = (r["kv_transfer_ms"], bw, prof["kv_transfer"]["kv_bytes_per_token"])
print("| link | raw TCP Gbit/s | prompt tokens | KV bytes | measured ms p50 (min-max, n) | predicted ms (tandem sim) | ratio measured/predicted | effective Gbit/s |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for link in links:
    for (l, n), ms in sorted((k, v) for k, v in rows.items() if k[0] == link):
        p50 = statistics.median(ms)
        p, bw, bpt = pred.get((link, n), (float("nan"), 0, 0))
        b = bytes_of[(link, n)]
        eff = int(b) * 8 / (p50 / 1e3) / 1e9 if b.isdigit() else float("nan")
        label = link if link != "unshaped" else f"unshaped (sim: memcpy {bw / 1e9:.1f} GB/s)"
        print(f"| {label} | {tcp.get(link, '?')} | {n} | {b} | {p50:.1f} ({min(ms):.1f}-{max(ms):.1f}, {len(ms)}) | {p:.2f} | {p50 / p:.2f} | {eff:.2f} |")
PY
