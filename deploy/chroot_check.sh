#!/usr/bin/env bash
# Runs deploy/Dockerfile's steps in a fresh Debian 12 root made with debootstrap (no container engine
# needed) and starts the CPU cluster inside it, so that a step missing from scripts/install-deps.sh or the
# Dockerfile shows up. Not run by CI: it needs root, Debian's apt mirrors and about an hour on 2 cores.
#
#   sudo bash deploy/chroot_check.sh [--reuse] [--worktree] [--no-runtime] [--jobs N] [WORKDIR]
#
#   WORKDIR       where the roots live (default /var/tmp/tandem-chroot); everything the check makes is in it
#   --reuse       keep the debootstrapped root (and the packages it has) from an earlier run; the sources,
#                 /build and /out are always fresh. Without it the work dir is wiped and made again.
#   --worktree    test the working tree (tracked + untracked, not ignored) instead of HEAD
#   --no-runtime  skip the runtime stage (the slim image's packages and the cluster as the image's user)
#   --jobs N      cap on parallel compile jobs (default 2; the Dockerfile asks for $(nproc), capped with
#                 OMP_THREAD_LIMIT, which GNU nproc honours)
#   MIRROR=URL SECURITY_MIRROR=URL override the mirrors read from the host's apt sources
#
# Phases (timed, each PASS/FAIL/SKIP in the summary):
#   debootstrap      `debootstrap --variant=minbase bookworm` (debian:12 is such a root), with the image's
#                    apt sources (bookworm, bookworm-updates, bookworm-security) on the host's mirror
#   install-deps     the build stage up to and including its `RUN bash scripts/install-deps.sh ...`
#   build            the rest of the build stage: CMake configure + build of `tandem`, strip, --version,
#                    the ldd + dpkg -S list of runtime packages
#   cluster          in the build root, as scripts/demo.sh: `tandem up` (router, 1 prefill, 2 decode) on
#                    the embedded default model; HTTP /v1/models, /v1/completions (plain and streamed),
#                    /health, gRPC `tandem generate` and `tandem health`; then SIGTERM and a clean exit
#   runtime-image    the runtime stage in another fresh minbase root (debian:12-slim's stand-in): the listed
#                    packages, the user, /out/tandem copied in
#   runtime-cluster  the same cluster checks as the image's user (uid 10001) with its ENV and WORKDIR, the
#                    image having no curl: curl runs from the build root, as a client on the host would
# The Dockerfile is interpreted, not copied: each stage's ARG, ENV, SHELL, WORKDIR, COPY, RUN and USER are
# executed in order with `chroot` (an unknown instruction is an error), and the build context is the
# repository's files less .dockerignore. The clusters run in a private network namespace (only loopback),
# so the fixed ports 8000/8080 cannot collide with anything on the host. The whole script runs in a
# private mount namespace and unmounts /proc, /sys, /dev, /dev/pts of each root on exit, failure included.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$script")/.." && pwd)
workdir=/var/tmp/tandem-chroot
reuse=false
worktree=false
runtime=true
jobs=2
orig_args=("$@")
while (($#)); do
  case $1 in
    --reuse) reuse=true ;;
    --worktree) worktree=true ;;
    --no-runtime) runtime=false ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift ;;
    --jobs=*) jobs=${1#--jobs=} ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "chroot_check: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) workdir=$1 ;;
  esac
  shift
done
die() { echo "chroot_check: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root (debootstrap, chroot and mount need it)"
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs wants a positive number, got '$jobs'"
workdir=$(realpath -m "$workdir")
[[ $workdir == /*/* && $workdir != *[[:space:]]* ]] || die "refusing work dir '$workdir' (absolute, two levels deep, no spaces)"
for tool in unshare chroot ip git tar mount umount; do
  command -v "$tool" >/dev/null || die "$tool is missing on the host"
done

# Everything below runs in a private mount namespace: no mount made here is seen by the host, and all of
# them vanish with the namespace even if this script is killed before its trap runs.
if [[ ${TANDEM_CHROOT_CHECK_NS:-} != 1 ]]; then
  exec unshare --mount --propagation private env TANDEM_CHROOT_CHECK_NS=1 bash "$script" "${orig_args[@]}"
fi

broot=$workdir/build-root       # the build stage (FROM debian:12)
rroot=$workdir/runtime-root     # the runtime stage (FROM debian:12-slim)
ctx=$workdir/context            # the build context: the repository's files less .dockerignore
minbase_tar=$workdir/minbase.tar
marker=$workdir/.tandem-chroot-check
default_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

phases=(debootstrap install-deps build cluster runtime-image runtime-cluster)
declare -A status=() secs=() note=()
for p in "${phases[@]}"; do status[$p]=SKIP; done
current=""
phase_start=0
stamp() { date -u +%H:%M:%S; }
phase() {  # phase NAME: ends the current phase (PASS) and starts NAME
  [[ $current == "$1" ]] && return 0
  if [[ -n $current ]]; then
    secs[$current]=$((SECONDS - phase_start)); status[$current]=PASS
    echo "=== $(stamp) [$current] PASS in ${secs[$current]} s"
  fi
  current=$1; phase_start=$SECONDS
  [[ -n $current ]] && { status[$current]=RUNNING; echo "=== $(stamp) [$current] start"; }
  return 0
}

# Processes whose root directory is under the work dir: only this script starts any.
kill_chroot_processes() {
  local p root
  for p in /proc/[0-9]*; do
    [[ ${p#/proc/} == "$$" ]] && continue
    root=$(readlink "$p/root" 2>/dev/null) || continue
    if [[ $root == "$workdir"/* ]]; then kill -KILL "${p#/proc/}" 2>/dev/null || true; fi
  done
}
mounts_under() {  # mount points under $1, deepest first
  awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r
}
unmount_all() {
  local m
  for m in $(mounts_under "$workdir"); do
    umount "$m" 2>/dev/null || umount -l "$m" || echo "chroot_check: cannot unmount $m" >&2
  done
}
# Long commands run as a background job that the script waits for: bash runs a TERM/INT trap only after a
# foreground child ends (a whole build), but at once during `wait`.
fg_pid=""
run_fg() {
  "$@" &
  fg_pid=$!
  local rc=0
  wait "$fg_pid" || rc=$?
  fg_pid=""
  return "$rc"
}
on_exit() {
  local rc=$?
  set +e
  if [[ -n $fg_pid ]]; then kill -TERM "$fg_pid" 2>/dev/null; fi
  if [[ -n $current ]]; then
    secs[$current]=$((SECONDS - phase_start))
    status[$current]=$([[ $rc == 0 ]] && echo PASS || echo FAIL)
  fi
  kill_chroot_processes
  sleep 0.2
  kill_chroot_processes
  unmount_all
  echo
  echo "=== chroot_check summary: commit ${commit:-?}${dirty:-}, $(date -u '+%Y-%m-%d %H:%M UTC'), work dir $workdir"
  local p total=0 result=PASS
  for p in "${phases[@]}"; do
    printf '  %-16s %-5s %6s s  %s\n' "$p" "${status[$p]}" "${secs[$p]:--}" "${note[$p]:-}"
    total=$((total + ${secs[$p]:-0}))
    [[ ${status[$p]} == FAIL || ${status[$p]} == RUNNING ]] && result=FAIL
  done
  [[ $rc != 0 ]] && result=FAIL
  printf '  %-16s %-5s %6s s\n' total "$result" "$total"
  echo "RESULT: $result"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The commit is pinned here: HEAD may move while debootstrap runs.
commit_sha=$(git -C "$repo" rev-parse HEAD)
commit=${commit_sha:0:7}
if $worktree; then dirty=" + working tree"; fi

# --- apt mirrors: the ones the host's apt uses (.list and deb822 .sources), else deb.debian.org ---------------
mirror_for() {  # mirror_for SUITE
  local f uri
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    uri=$(awk -v s="$1" '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                                     if ($(i + 1) == s) { print $i; exit } }' "$f")
    [[ -n $uri ]] && { echo "${uri%/}"; return; }
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    uri=$(awk -v s="$1" 'BEGIN { RS = ""; FS = "\n" }
      { t = ""; u = ""; su = ""; en = "yes"
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^[ \t]*#/) continue
          k = $i; sub(/:.*/, "", k); k = tolower(k); v = $i; sub(/^[^:]*:[ \t]*/, "", v)
          if (k == "types") t = v; else if (k == "uris") u = v; else if (k == "suites") su = v
          else if (k == "enabled") en = tolower(v)
        }
        if (en == "no" || (" " t " ") !~ / deb /) next
        n = split(su, a, /[ \t]+/)
        for (j = 1; j <= n; j++) if (a[j] == s) { split(u, b, /[ \t]+/); print b[1]; exit }
      }' "$f")
    [[ -n $uri ]] && { echo "${uri%/}"; return 0; }
  done
  return 0
}
mirror=${MIRROR:-$(mirror_for bookworm)}
mirror=${mirror:-http://deb.debian.org/debian}
security_mirror=${SECURITY_MIRROR:-$(mirror_for bookworm-security)}
security_mirror=${security_mirror:-http://deb.debian.org/debian-security}

echo "chroot_check: repository $repo at $commit${dirty:-}; work dir $workdir; mirror $mirror (security $security_mirror)"

# --- the Dockerfile, one logical instruction a line, of one stage -----------------------------------------------
# Comment lines are dropped, continuation lines joined (as Docker does). Lines before the first FROM come
# out as "GLOBAL <instruction>".
stage_instructions() {  # stage_instructions DOCKERFILE STAGE
  awk -v stage="$2" '
    function emit(l,   n, w) {
      n = split(l, w, /[ \t]+/)
      if (toupper(w[1]) == "FROM") { seen_from = 1; in_stage = (n >= 4 && toupper(w[n - 1]) == "AS" && w[n] == stage) }
      if (!seen_from) print "GLOBAL " l
      else if (in_stage) print l
    }
    /^[ \t]*#/ { next }
    { line = $0; sub(/[ \t\r]+$/, "", line) }
    line == "" { next }
    line ~ /\\$/ { buf = buf substr(line, 1, length(line) - 1); next }
    { emit(buf line); buf = "" }
  ' "$1"
}
unquote() { local v=$1; v=${v#\"}; v=${v%\"}; echo "$v"; }

# --- a root: apt sources as in the debian:12 image, resolv.conf, hosts, and the four mounts ---------------------
prepare_root() {
  local r=$1
  rm -f "$r/etc/apt/sources.list"
  cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cp -L --remove-destination /etc/resolv.conf "$r/etc/resolv.conf"
  # A container engine provides /etc/hosts; a debootstrapped root may have none.
  [[ -s $r/etc/hosts ]] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
  [[ -n $(mounts_under "$r") ]] && return 0
  mount -t proc proc "$r/proc"
  mount -t sysfs sysfs "$r/sys"
  mount --bind /dev "$r/dev"
  mount --bind /dev/pts "$r/dev/pts"
}

# --- one Dockerfile stage, executed in a root --------------------------------------------------------------------
declare -A stage_root=()
declare -A global_args=()
run_env=()       # the environment RUN sees (ARG and ENV), also what the cluster checks start with
run_user=""      # USER, as chroot --userspec
run_workdir=/
run_stage() {  # run_stage DOCKERFILE STAGE ROOT PHASE_FN
  local dockerfile=$1 stage=$2 root=$3 phase_fn=$4
  local -a instrs shell=(/bin/sh -c) words
  local ins kw rest name value src dst from t cmd deps_done=false
  mapfile -t instrs < <(stage_instructions "$dockerfile" "$stage")
  ((${#instrs[@]})) || die "no stage '$stage' in $dockerfile"
  run_env=("PATH=$default_path" "HOME=/root")
  run_user=""
  run_workdir=/
  stage_root[$stage]=$root
  for ins in "${instrs[@]}"; do
    kw=${ins%%[[:space:]]*}
    rest=${ins#"$kw"}; rest=${rest#"${rest%%[![:space:]]*}"}
    if [[ $kw == GLOBAL ]]; then
      kw=${rest%%[[:space:]]*}; rest=${rest#"$kw"}; rest=${rest#"${rest%%[![:space:]]*}"}
      if [[ ${kw^^} == ARG && $rest == *=* ]]; then global_args[${rest%%=*}]=$(unquote "${rest#*=}"); fi
      continue
    fi
    "$phase_fn" "${kw^^}" "$rest" "$deps_done"
    case ${kw^^} in
      FROM)
        read -r -a words <<<"$rest"; from=${words[0]}
        if [[ $from =~ ^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$ ]]; then from=${global_args[${BASH_REMATCH[1]}]:-$from}; fi
        echo "--- FROM $from AS $stage (here: a debootstrapped bookworm minbase root, $root)"
        [[ $from == debian:12* || $from == debian:bookworm* ]] || echo "chroot_check: warning: stage $stage is based on $from, not Debian 12" >&2
        ;;
      SHELL)
        rest=${rest#\[}; rest=${rest%\]}
        IFS=',' read -r -a words <<<"$rest"
        shell=()
        for t in "${words[@]}"; do t=${t#"${t%%[![:space:]]*}"}; t=${t%"${t##*[![:space:]]}"}; shell+=("$(unquote "$t")"); done
        ;;
      ARG)
        name=${rest%%=*}
        if [[ $rest == *=* ]]; then value=$(unquote "${rest#*=}"); else value=${global_args[$name]-}; fi
        run_env+=("$name=$value")
        ;;
      ENV)
        read -r -a words <<<"$rest"
        for t in "${words[@]}"; do
          [[ $t == *=* && $t != *'$'* ]] || die "unsupported ENV form: $ins"
          run_env+=("${t%%=*}=$(unquote "${t#*=}")")
        done
        ;;
      WORKDIR)
        [[ $rest != *'$'* ]] || die "unsupported WORKDIR with a variable: $ins"
        [[ $rest == /* ]] && run_workdir=$rest || run_workdir=${run_workdir%/}/$rest
        mkdir -p "$root$run_workdir"
        ;;
      USER) run_user=$rest ;;
      COPY)
        from=""
        read -r -a words <<<"$rest"
        while [[ ${words[0]} == --* ]]; do
          case ${words[0]} in
            --from=*) from=${words[0]#--from=} ;;
            *) die "unsupported COPY flag: $ins" ;;
          esac
          words=("${words[@]:1}")
        done
        ((${#words[@]} >= 2)) || die "COPY needs a source and a destination: $ins"
        dst=${words[-1]}
        [[ $dst == /* ]] || dst=${run_workdir%/}/$dst
        for src in "${words[@]:0:${#words[@]}-1}"; do
          if [[ -n $from ]]; then
            [[ -n ${stage_root[$from]:-} ]] || die "COPY --from=$from: no such stage run before"
            src=${stage_root[$from]}/${src#/}
          else
            src=$ctx/$src
          fi
          [[ -e $src ]] || die "COPY: $src does not exist ($ins)"
          echo "--- COPY ${src#"$workdir"/} -> $dst"
          if [[ -d $src ]]; then
            mkdir -p "$root$dst"; cp -a "$src/." "$root$dst/"; chown -R 0:0 "$root$dst"
          elif [[ $dst == */ || ${#words[@]} -gt 2 ]]; then
            mkdir -p "$root$dst"; cp -a "$src" "$root$dst/"; chown 0:0 "$root$dst/$(basename "$src")"
          else
            mkdir -p "$(dirname "$root$dst")"; cp -a "$src" "$root$dst"; chown 0:0 "$root$dst"
          fi
        done
        ;;
      RUN)
        cmd=$rest
        echo "--- RUN $cmd"
        local -a envv=("${run_env[@]}")
        # The Dockerfile builds with -j "$(nproc)"; GNU nproc honours OMP_THREAD_LIMIT.
        if [[ $current == build ]]; then envv+=("OMP_THREAD_LIMIT=$jobs"); fi
        run_fg nice -n 10 chroot ${run_user:+--userspec=$run_user} "$root" /usr/bin/env -i -C "$run_workdir" "${envv[@]}" \
          "${shell[@]}" "$cmd" </dev/null
        if [[ $cmd == *install-deps* ]]; then deps_done=true; fi
        ;;
      EXPOSE|ENTRYPOINT|CMD|LABEL|STOPSIGNAL) echo "--- $kw $rest (recorded, nothing to run)" ;;
      *) die "unsupported Dockerfile instruction in stage $stage: $ins" ;;
    esac
  done
}
build_phase_of() {  # the build stage: everything up to the install-deps RUN is install-deps, the rest build
  if [[ $1 == RUN && $2 == *install-deps* ]] || [[ $3 == false ]]; then phase install-deps; else phase build; fi
}
runtime_phase_of() { phase runtime-image; }

# --- the cluster checks: run in a private network namespace, so only loopback and no port collisions ----------
cluster_body() {  # cluster_body ROOT USERSPEC WORKDIR TANDEM TOOLS_ROOT LOG ENV...
  local root=$1 user=$2 wd=$3 tandem=$4 tools=$5 log=$6
  shift 6
  local -a run=(chroot ${user:+--userspec=$user} "$root" /usr/bin/env -i -C "$wd" "$@")
  local -a tool=(chroot "$tools" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root)
  local t0=$SECONDS out code n up_pid rc p left
  fail() { echo "  FAIL $*"; echo "  --- tandem up log:"; sed 's/^/  | /' "$log"; kill -TERM "$up_pid" 2>/dev/null; return 1; }
  ok() { echo "  ok   $*"; }

  "${run[@]}" "$tandem" up --port 8000 --http-port 8080 --prefill 1 --decode 2 --log-level warning >"$log" 2>&1 </dev/null &
  up_pid=$!
  for _ in $(seq 1 600); do
    grep -q "cluster up" "$log" && break
    kill -0 "$up_pid" 2>/dev/null || { fail "tandem up exited before the cluster was up"; return 1; }
    sleep 0.5
  done
  grep -q "cluster up" "$log" || { fail "the cluster was not up within 300 s"; return 1; }
  ok "tandem up: $(grep -m1 'cluster up' "$log") [$((SECONDS - t0)) s, model made on first use]"

  http() {  # http PATH [curl args...]: prints the body, then the status code on the last line
    local path=$1; shift
    "${tool[@]}" curl -sS --max-time 120 -w '\n%{http_code}' "http://127.0.0.1:8080$path" "$@" </dev/null
  }
  out=$(http /v1/models) || { fail "GET /v1/models: curl failed"; return 1; }
  code=${out##*$'\n'}
  [[ $code == 200 && $out == *'"data"'* ]] || { fail "GET /v1/models: $code ${out%$'\n'*}"; return 1; }
  ok "GET /v1/models: 200"

  out=$(http /v1/completions -H 'Content-Type: application/json' \
    -d '{"prompt": "The quick brown fox", "max_tokens": 16, "temperature": 0.8, "seed": 1, "ignore_eos": true}') \
    || { fail "POST /v1/completions: curl failed"; return 1; }
  code=${out##*$'\n'}
  n=$(grep -o '"completion_tokens": *[0-9]*' <<<"$out" | grep -o '[0-9]*$' | head -1)
  [[ $code == 200 && ${n:-0} -gt 0 ]] || { fail "POST /v1/completions: $code ${out%$'\n'*}"; return 1; }
  ok "POST /v1/completions: 200, $n completion tokens: $(grep -o '"text": *"[^"]*"' <<<"$out" | head -1 | cut -c1-80)"

  out=$(http /v1/completions -N -H 'Content-Type: application/json' \
    -d '{"prompt": "Once upon a time, in a small village,", "max_tokens": 8, "stream": true, "ignore_eos": true, "stream_options": {"include_usage": true}}') \
    || { fail "POST /v1/completions (stream): curl failed"; return 1; }
  code=${out##*$'\n'}
  n=$(grep -c '^data: {' <<<"$out" || true)
  [[ $code == 200 && $out == *'data: [DONE]'* && $n -gt 1 ]] || { fail "POST /v1/completions (stream): $code ${out%$'\n'*}"; return 1; }
  ok "POST /v1/completions stream: 200, $n events, data: [DONE]"

  out=$(http /health) || { fail "GET /health: curl failed"; return 1; }
  code=${out##*$'\n'}
  [[ $code == 200 ]] || { fail "GET /health: $code ${out%$'\n'*}"; return 1; }
  ok "GET /health: 200"

  out=$("${run[@]}" "$tandem" generate --router 127.0.0.1:8000 --prompt "def fibonacci(n):" --max-tokens 16 \
          --temperature 0.8 --seed 1 --ignore-eos 2>&1 </dev/null) || { fail "tandem generate: $out"; return 1; }
  n=$(grep -o '[0-9]* generated\]' <<<"$out" | grep -o '^[0-9]*' | head -1)
  [[ ${n:-0} -gt 0 ]] || { fail "tandem generate: no tokens: $out"; return 1; }
  ok "gRPC tandem generate: OK, $n tokens, $(grep -o '^\[finish[^]]*\]' <<<"$out")"

  out=$("${run[@]}" "$tandem" health --addr 127.0.0.1:8000 2>&1 </dev/null) || { fail "tandem health: $out"; return 1; }
  ok "gRPC tandem health: $(tr '\n' ' ' <<<"$out")"

  kill -TERM "$up_pid"
  for _ in $(seq 1 120); do kill -0 "$up_pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$up_pid" 2>/dev/null && { fail "tandem up still running 30 s after SIGTERM"; return 1; }
  rc=0; wait "$up_pid" || rc=$?
  [[ $rc == 0 ]] || { fail "tandem up exited $rc after SIGTERM"; return 1; }
  left=0
  for p in /proc/[0-9]*; do [[ $(readlink "$p/root" 2>/dev/null) == "$root" ]] && left=$((left + 1)); done
  ((left == 0)) || { fail "$left processes left in $root after tandem up stopped"; return 1; }
  ok "SIGTERM: tandem up exited 0, no process left"
}
run_cluster() {  # run_cluster ARGS of cluster_body; only as `run_fg run_cluster` (it execs, in run_fg's subshell)
  exec unshare --net -- bash -c "$(declare -f cluster_body); set -uo pipefail; ip link set lo up && cluster_body \"\$@\"" _ "$@"
}

# === debootstrap ==================================================================================================
phase debootstrap
if $reuse && [[ -f $marker && -x $broot/bin/bash && -f $minbase_tar ]]; then
  echo "chroot_check: --reuse: keeping $broot (debootstrapped $(cat "$marker"))"
  note[debootstrap]="reused"
else
  if [[ -e $workdir ]]; then
    [[ -f $marker || -z $(ls -A "$workdir") ]] || die "$workdir exists and was not made by this script; remove it or pick another"
    [[ -z $(mounts_under "$workdir") ]] || die "something is still mounted under $workdir"
    rm -rf --one-file-system "$workdir"
  fi
  mkdir -p "$workdir"
  : >"$marker"
  if ! command -v debootstrap >/dev/null; then
    echo "chroot_check: installing debootstrap on the host"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  fi
  echo "chroot_check: debootstrap --variant=minbase bookworm $broot $mirror"
  run_fg debootstrap --variant=minbase bookworm "$broot" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
    || { tail -30 "$workdir/debootstrap.log"; die "debootstrap failed (log: $workdir/debootstrap.log)"; }
  tail -1 "$workdir/debootstrap.log"
  rm -rf "$broot"/var/cache/apt/archives/*.deb
  # The runtime stage gets its own fresh minbase root from this copy.
  tar -C "$broot" -cpf "$minbase_tar" .
  date -u '+%Y-%m-%d %H:%M UTC' >"$marker"
  note[debootstrap]="$(du -sm "$broot" | cut -f1) MB root"
fi
prepare_root "$broot"

# The build context: a clean clone's files (HEAD) or the working tree, less .dockerignore.
rm -rf "$ctx" && mkdir -p "$ctx"
if $worktree; then
  git -C "$repo" ls-files -z -c -o --exclude-standard \
    | (cd "$repo" && while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done) \
    | tar -C "$repo" --null -T - -cf - | tar -x -C "$ctx"
else
  git -C "$repo" archive "$commit_sha" | tar -x -C "$ctx"
fi
dockerfile=$workdir/Dockerfile
cp "$ctx/deploy/Dockerfile" "$dockerfile"
if [[ -f $ctx/.dockerignore ]]; then
  (
    cd "$ctx"
    shopt -s globstar dotglob nullglob
    while IFS= read -r pat; do
      pat=${pat%%$'\r'}; pat=${pat#"${pat%%[![:space:]]*}"}; pat=${pat%"${pat##*[![:space:]]}"}
      [[ -z $pat || $pat == \#* ]] && continue
      [[ $pat == !* || $pat == *..* ]] && die ".dockerignore pattern '$pat' is not supported here"
      pat=${pat#/}
      for m in $pat; do rm -rf -- "$m"; done
    done <.dockerignore
  )
fi
echo "chroot_check: build context: $(find "$ctx" -type f | wc -l) files ($(du -sm "$ctx" | cut -f1) MB)"
rm -rf "$broot/src" "$broot/build" "$broot/out"

# === install-deps, build: the Dockerfile's build stage ============================================================
run_stage "$dockerfile" build "$broot" build_phase_of
[[ -x $broot/out/tandem && -s $broot/out/runtime-packages ]] || die "the build stage made no /out/tandem or /out/runtime-packages"
note[install-deps]="$(chroot "$broot" dpkg-query -W -f='${Package}\n' | wc -l) packages in the root"
note[build]="/out/tandem $(du -m "$broot/out/tandem" | cut -f1) MB; runtime packages: $(tr '\n' ' ' <"$broot/out/runtime-packages")"

# === cluster: in the build root, as scripts/demo.sh does ===========================================================
phase cluster
run_fg run_cluster "$broot" "" /src /out/tandem "$broot" "$workdir/cluster-build.log" "PATH=$default_path" HOME=/root

# === runtime: the runtime stage in a fresh minbase root, the cluster as the image's user ========================
if $runtime; then
  phase runtime-image
  [[ -z $(mounts_under "$rroot") ]] || die "something is still mounted under $rroot"
  rm -rf --one-file-system "$rroot" && mkdir -p "$rroot"
  tar -C "$rroot" -xpf "$minbase_tar"
  prepare_root "$rroot"
  run_stage "$dockerfile" runtime "$rroot" runtime_phase_of
  note[runtime-image]="$(chroot "$rroot" dpkg-query -W -f='${Package}\n' | wc -l) packages; USER $run_user; WORKDIR $run_workdir"
  phase runtime-cluster
  # HOME as a container engine sets it: the USER's home directory in the image's /etc/passwd.
  uid=${run_user%%:*}
  home=$(awk -F: -v u="$uid" '$1 == u || $3 == u {print $6; exit}' "$rroot/etc/passwd")
  user_env=()
  for e in "${run_env[@]}"; do [[ $e == HOME=* ]] && user_env+=("HOME=${home:-/}") || user_env+=("$e"); done
  run_fg run_cluster "$rroot" "$run_user" "$run_workdir" tandem "$broot" "$workdir/cluster-runtime.log" "${user_env[@]}"
fi
phase ""
