#!/usr/bin/env bash
# Real clients against a real cluster: starts `tandem up` (router + 1 prefill + 1 decode process) on a
# small random model with a chat template, then runs the Node tests (node --test) with the official
# OpenAI SDK (openai@6) and @grpc/grpc-js against it. ctest runs this (tests/CMakeLists.txt).
#
#   bash tests/node/run.sh TANDEM_BINARY WORKDIR
#
# Exit 77 (ctest: skipped, with the reason printed) when node is missing or the npm packages cannot be
# installed (no registry); any test failure fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tandem=$(realpath "$1")
work=$(mkdir -p "$2" && realpath "$2")
mkdir -p "$work"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP: node/npm not found"; exit 77
fi
if [[ ! -d $here/node_modules/openai || $here/package-lock.json -nt $here/node_modules/.package-lock.json ]]; then
  if ! (cd "$here" && npm ci --no-audit --no-fund >"$work/npm.log" 2>&1); then
    cat "$work/npm.log"; echo "SKIP: npm ci failed (no registry?)"; exit 77
  fi
fi

model=$work/tiny-chat
rm -rf "$model"
# small, not tiny: its decode (~1 ms a token) is slow enough that an abort lands mid-stream even on a
# loaded machine.
"$tandem" mkmodel --preset small --out "$model" --seed 5 >/dev/null || exit 1
# A chat template (Zephyr style, as TinyLlama's) so that /v1/chat/completions has one to render.
cat >"$model/tokenizer_config.json" <<'JSON'
{"bos_token": "<s>", "eos_token": "</s>",
 "chat_template": "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + eos_token }}{% elif message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + eos_token }}{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n'  + message['content'] + eos_token }}{% endif %}{% if loop.last and add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}{% endfor %}"}
JSON

log=$work/up.log
"$tandem" up --model "$model" --port 0 --http-port 0 --prefill 1 --decode 1 --threads 1 --metrics \
  --log-level warning >"$log" 2>&1 &
up=$!
trap 'kill -TERM $up 2>/dev/null; wait $up 2>/dev/null' EXIT
for _ in $(seq 1 240); do
  grep -q "cluster up" "$log" && grep -q "OpenAI API" "$log" && break
  kill -0 $up 2>/dev/null || { cat "$log"; echo "tandem up exited"; exit 1; }
  sleep 0.25
done
grep -q "OpenAI API" "$log" || { cat "$log"; echo "the cluster did not come up"; exit 1; }
export TANDEM_GRPC_ADDRESS=$(sed -n 's/.*router at \([^ ]*\) .*/\1/p' "$log" | head -1)
export TANDEM_HTTP_URL=$(sed -n 's|^OpenAI API: \(http://[^ ]*/v1\).*|\1|p' "$log" | head -1)
export TANDEM_WORKER_METRICS=$(sed -n 's|^metrics: \(prefill\|decode\)-[0-9]* \(http://[^ ]*\)$|\2|p' "$log" | paste -sd,)
export TANDEM_PROTO_DIR=$here/../../proto
export TANDEM_BINARY=$tandem
export TANDEM_MODEL=$model
echo "cluster: grpc $TANDEM_GRPC_ADDRESS, http $TANDEM_HTTP_URL, worker metrics $TANDEM_WORKER_METRICS"
(cd "$here" && node --test --test-concurrency=1 ./*.test.mjs)
status=$?
[[ $status -ne 0 ]] && exit $status

# The README's curl examples, against this cluster's HTTP address.
echo "README curl examples:"
host=${TANDEM_HTTP_URL#http://}
host=${host%/v1}
readme=$here/../../README.md
examples=$(sed -n '/<!-- curl-examples:begin -->/,/<!-- curl-examples:end -->/p' "$readme" | grep -v '^<!--\|^```' |
           sed ':a;/\\$/{N;s/\\\n//;ba}')
[[ -n $examples ]] || { echo "no curl examples found in README.md"; exit 1; }
failed=0
while IFS= read -r example; do
  [[ $example == curl* ]] || continue
  command=${example//localhost:8080/$host}
  command=${command/curl /curl -sS --fail-with-body --max-time 60 }
  if out=$(eval "$command" 2>&1); then
    echo "ok: ${example:0:80}"
  else
    echo "FAILED: $example"; echo "$out"; failed=1
  fi
done <<<"$examples"
exit $failed
