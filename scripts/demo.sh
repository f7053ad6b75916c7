#!/usr/bin/env bash
# Installs what is needed, builds, starts a local disaggregated cluster (router + 1 prefill + 2 decode
# processes) on the embedded default model, and sends it real requests. The cluster then stays up until
# Ctrl-C; with --once it stops after the requests.
set -euo pipefail
cd "$(dirname "$0")/.."
once=false
[[ ${1:-} == --once ]] && once=true
if [[ $(id -u) == 0 ]]; then bash scripts/install-deps.sh; fi
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target tandem
tandem="$build/cli/tandem"
port=${TANDEM_PORT:-8000}
http_port=${TANDEM_HTTP_PORT:-8080}

log=$(mktemp -t tandem-up.XXXXXX)
"$tandem" up --port "$port" --http-port "$http_port" --prefill 1 --decode 2 --log-level warning >"$log" 2>&1 &
up_pid=$!
trap 'kill -TERM $up_pid 2>/dev/null; wait $up_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  grep -q "cluster up" "$log" && break
  if ! kill -0 $up_pid 2>/dev/null; then cat "$log"; echo "demo: tandem up failed" >&2; exit 1; fi
  sleep 0.5
done
grep -q "cluster up" "$log" || { cat "$log"; echo "demo: cluster did not come up" >&2; exit 1; }
head -1 "$log"

# The default model has random weights (it is made on first use by `tandem mkmodel --preset small`), so
# the text is gibberish by design; tokenizer, engines, KV hand-off and sampling are real.
echo "### the OpenAI API: POST http://127.0.0.1:$http_port/v1/completions"
curl -sS "http://127.0.0.1:$http_port/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt": "The quick brown fox", "max_tokens": 32, "temperature": 0.8, "seed": 1}'
echo
echo "### streaming (server-sent events)"
curl -sSN "http://127.0.0.1:$http_port/v1/completions" -H 'Content-Type: application/json' \
  -d '{"prompt": "Once upon a time, in a small village,", "max_tokens": 8, "stream": true}'
for prompt in "The quick brown fox" "Once upon a time, in a small village," "def fibonacci(n):"; do
  echo "### gRPC (tandem generate): $prompt"
  "$tandem" generate --router "127.0.0.1:$port" --prompt "$prompt" --max-tokens 32 --temperature 0.8 --seed 1
done
if $once; then exit 0; fi
echo "### the cluster stays up: OpenAI API at http://127.0.0.1:$http_port/v1, gRPC at 127.0.0.1:$port"
echo "### try: curl http://127.0.0.1:$http_port/v1/completions -d '{\"prompt\": \"Hi\", \"max_tokens\": 16}'"
echo "### Ctrl-C stops it"
wait $up_pid
