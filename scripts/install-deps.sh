#!/usr/bin/env bash
# Installs every Debian 12 package that tandem's build, tests and benchmarks need.
# Idempotent and quiet: packages already present are skipped by apt. Run as root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libabsl-dev                         # Status, flags, strings, synchronization
  libprotobuf-dev protobuf-compiler   # proto/
  libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libgmock-dev           # unit tests
  libbenchmark-dev                    # bench/
  nlohmann-json3-dev                  # config.json, tokenizer.json, safetensors headers
  libpcre2-dev                        # tokenizer pre-tokenizer regexes (\p{L} ...)
  libopenblas-dev                     # CPU GEMM fast path
  libboost-dev                        # Boost.Asio/Beast: the OpenAI-compatible HTTP API and /metrics
  libssl-dev openssl                  # HTTPS on the HTTP API; openssl makes the TLS tests' certificates
  python3 python3-numpy               # tests/reference (Debian's own python3)
  curl                                # bench scripts read the daemons' /metrics
  clang libclang-rt-dev               # fuzz/: libFuzzer + ASan/UBSan runtimes (fuzz/run.sh)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all ${#packages[@]} packages present"
