#!/usr/bin/env bash
# Soak test (not in CI; RELIABILITY.md L1-L4, issue 11).
#
# Starts a cluster from separate processes (2 prefill, 2 decode, 1 router; not `tandem up`, so that a
# worker can be SIGKILLed and restarted on its own port), drives it through the OpenAI HTTP API with
# N requests (5% cancelled mid-stream by the client closing the connection, 5% with a very short client
# timeout, the rest plain and streaming completions), SIGKILLs one worker every KILL_EVERY_S seconds
# (alternating prefill-0 and decode-0; prefill-1, decode-1 and the router are never killed, so their
# RSS can be compared) and restarts it on the same port. At the end it quiesces 5 s and checks that
# every worker's KV blocks are all free and no prefill lease is held, and that the RSS of every process
# that was not restarted grew by under 5% since warm-up. Writes its figures to bench/soak.md.
#
#   nice -n 5 bash bench/soak.sh                  # 10,000 requests
#   N=3000 RATE=15 bash bench/soak.sh             # shorter
#
# Settings (environment): TANDEM (binary, default build/cli/tandem), N (10000), CONC (8 client
# threads), RATE (requests/s offered in all, 0 = as fast as CONC allows; default 20 so that a run lasts
# ~8.5 min and sees 7 kills), MAX_TOKENS (16), KILL_EVERY_S (60), RESTART_DELAY_S (2: the process
# manager's restart delay), WARMUP (500 requests before the RSS baseline), CANCEL_PCT (5),
# DEADLINE_PCT (5), BASE_PORT (27300), PRESET (tiny), WORKER_THREADS (1), LEASE_MS (30000),
# OUT (bench/soak.md), WORKDIR (a fresh temp dir: logs, per-request records), SEED (1), LONG_CONC (2
# extra client threads that stream long greedy requests back to back, LONG_MAX_TOKENS 400 tokens each,
# for the whole run: N short requests finish in milliseconds, so without them a kill would almost never
# find a stream in flight and the mid-stream failover would go untested). A decode kill waits up to 5 s
# for the victim to have a running sequence.
# Exit status: 0 when every check passes (a run too short for one kill fails the recovery check), 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
export TANDEM="${TANDEM:-$PWD/build/cli/tandem}"
export N="${N:-10000}" CONC="${CONC:-8}" RATE="${RATE:-20}" MAX_TOKENS="${MAX_TOKENS:-16}"
export KILL_EVERY_S="${KILL_EVERY_S:-60}" RESTART_DELAY_S="${RESTART_DELAY_S:-2}" WARMUP="${WARMUP:-500}"
export CANCEL_PCT="${CANCEL_PCT:-5}" DEADLINE_PCT="${DEADLINE_PCT:-5}" BASE_PORT="${BASE_PORT:-27300}"
export PRESET="${PRESET:-tiny}" WORKER_THREADS="${WORKER_THREADS:-1}" LEASE_MS="${LEASE_MS:-30000}"
export OUT="${OUT:-$PWD/bench/soak.md}" SEED="${SEED:-1}" LONG_CONC="${LONG_CONC:-2}" LONG_MAX_TOKENS="${LONG_MAX_TOKENS:-400}"
export WORKDIR="${WORKDIR:-$(mktemp -d /tmp/tandem-soak.XXXXXX)}"
export SOAK_CMDLINE="$(env | grep -E '^(N|CONC|LONG_CONC|LONG_MAX_TOKENS|RATE|MAX_TOKENS|KILL_EVERY_S|RESTART_DELAY_S|WARMUP|CANCEL_PCT|DEADLINE_PCT|PRESET|WORKER_THREADS|LEASE_MS|SEED)=' | sort | tr '\n' ' ')bash bench/soak.sh"
export COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
[[ -x "$TANDEM" ]] || { echo "no tandem binary at $TANDEM (build first)" >&2; exit 2; }
# Run a private copy: a rebuild during the soak must not change the binary that restarts use.
export TANDEM_BUILT="$(date -u -r "$TANDEM" '+%Y-%m-%d %H:%M UTC')"
mkdir -p "$WORKDIR"
cp "$TANDEM" "$WORKDIR/tandem"
export TANDEM_SOURCE="$TANDEM" TANDEM="$WORKDIR/tandem"
echo "soak: workdir $WORKDIR, report $OUT" >&2
exec python3 -u - <<'PY'
import atexit
import collections, http.client, json, os, random, re, signal, socket, statistics, subprocess
import sys, threading, time

E = os.environ
TANDEM, WORKDIR, OUT = E["TANDEM"], E["WORKDIR"], E["OUT"]
N, CONC, RATE = int(E["N"]), int(E["CONC"]), float(E["RATE"])
MAX_TOKENS, KILL_EVERY, RESTART_DELAY = int(E["MAX_TOKENS"]), float(E["KILL_EVERY_S"]), float(E["RESTART_DELAY_S"])
WARMUP, CANCEL_PCT, DEADLINE_PCT = int(E["WARMUP"]), float(E["CANCEL_PCT"]), float(E["DEADLINE_PCT"])
BASE, SEED = int(E["BASE_PORT"]), int(E["SEED"])
LONG_CONC, LONG_MAX_TOKENS = int(E["LONG_CONC"]), int(E["LONG_MAX_TOKENS"])
HOST = "127.0.0.1"
T0 = time.time()
CHILDREN = []

def cleanup(*_):
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
    if _:
        sys.exit(3)

atexit.register(cleanup)
signal.signal(signal.SIGTERM, cleanup)
signal.signal(signal.SIGINT, cleanup)

def log(*a):
    print("[%7.1fs]" % (time.time() - T0), *a, file=sys.stderr, flush=True)

def now():
    return time.time() - T0

# ---------------------------------------------------------------- cluster
model = os.path.join(WORKDIR, "model")
subprocess.run([TANDEM, "mkmodel", "--out", model, "--preset", E["PRESET"]], check=True,
               stdout=subprocess.DEVNULL)
secret = os.path.join(WORKDIR, "cluster-secret")
with open(secret, "w") as f:
    f.write("soak-" + "%032x" % random.Random().getrandbits(128) + "\n")
os.chmod(secret, 0o600)

ROUTER_PORT, HTTP_PORT, ROUTER_METRICS = BASE, BASE + 80, BASE + 90
workers = {}  # name -> dict(role, port, metrics, cmd, proc, restarts, log)
for i in range(2):
    for role, off in (("prefill", 1), ("decode", 21)):
        port, mport = BASE + off + i, BASE + off + 10 + i
        cmd = [TANDEM, role, "--model", model, "--port", str(port), "--metrics-port", str(mport),
               "--threads", E["WORKER_THREADS"], "--kv-cache-mb", "16", "--id", "%s-%d" % (role, i),
               "--cluster-secret-file", secret, "--log-level", "warning"]
        if role == "prefill":
            cmd += ["--lease-ms", E["LEASE_MS"]]
        workers["%s-%d" % (role, i)] = dict(role=role, port=port, metrics=mport, cmd=cmd, proc=None,
                                           restarts=0, addr="%s:%d" % (HOST, port))

def port_free(p):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT from an earlier run is fine
    try:
        s.bind((HOST, p)); return True
    except OSError:
        return False
    finally:
        s.close()

busy = [p for p in [ROUTER_PORT, HTTP_PORT, ROUTER_METRICS] + [w[k] for w in workers.values()
        for k in ("port", "metrics")] if not port_free(p)]
if busy:
    sys.exit("ports in use: %s (set BASE_PORT)" % busy)

def spawn(name):
    w = workers[name]
    lf = open(os.path.join(WORKDIR, "%s.%d.log" % (name, w["restarts"])), "w")
    w["proc"] = subprocess.Popen(w["cmd"], stdout=lf, stderr=subprocess.STDOUT)
    CHILDREN.append(w["proc"])
    return w["proc"]

def http_get(port, path, timeout=2.0):
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", path); r = c.getresponse(); return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()

def metrics(port):
    st, body = http_get(port, "/metrics")
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out

def wait_until(pred, timeout, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return True
        except Exception:
            pass
        time.sleep(step)
    return False

for name in workers:
    spawn(name)
for name, w in workers.items():
    if not wait_until(lambda: http_get(w["metrics"], "/metrics")[0] == 200, 60):
        sys.exit("%s did not start (see %s)" % (name, WORKDIR))
router_cmd = [TANDEM, "router", "--model", model, "--port", str(ROUTER_PORT), "--http-port", str(HTTP_PORT),
              "--metrics-port", str(ROUTER_METRICS), "--cluster-secret-file", secret, "--log-level", "info",
              "--prefill", ",".join(workers["prefill-%d" % i]["addr"] for i in range(2)),
              "--decode", ",".join(workers["decode-%d" % i]["addr"] for i in range(2))]
router = subprocess.Popen(router_cmd, stdout=open(os.path.join(WORKDIR, "router.log"), "w"),
                          stderr=subprocess.STDOUT)
CHILDREN.append(router)

def router_health():
    st, body = http_get(HTTP_PORT, "/health")
    return st, json.loads(body)

if not wait_until(lambda: router_health()[1].get("healthy_prefill_workers") == 2 and
                  router_health()[1].get("healthy_decode_workers") == 2, 60):
    sys.exit("router never saw 4 healthy workers (see %s)" % WORKDIR)
log("cluster up:", {n: w["proc"].pid for n, w in workers.items()}, "router", router.pid)

def kv_state(name):
    w = workers[name]
    m = metrics(w["metrics"])
    ph = w["role"]
    free = m.get('tandem_engine_kv_blocks_free{phase="%s"}' % ph)
    used = m.get('tandem_engine_kv_blocks_used{phase="%s"}' % ph)
    leases = m.get("tandem_prefill_leases_held", 0.0) if ph == "prefill" else 0.0
    return free, used, leases

baseline_kv = {n: kv_state(n) for n in workers}  # idle: free == total
log("idle KV:", baseline_kv)

def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None

def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None

def procs():
    d = {n: w["proc"] for n, w in workers.items()}
    d["router"] = router
    return d

# ---------------------------------------------------------------- load
PROMPTS = ["Once upon a time", "The quick brown fox", "Hello, how are you?", "In a small village",
           "The weather today is", "She opened the door and", "A list of things to do:", "Why is the sky blue?",
           "The cat sat on the mat", "def main():", "Tell me a story about a dragon", "1, 2, 3, 4,"]

rng = random.Random(SEED)
plan = []
for i in range(N):
    r = rng.random() * 100
    kind = "cancel" if r < CANCEL_PCT else "deadline" if r < CANCEL_PCT + DEADLINE_PCT else \
        ("stream" if rng.random() < 0.5 else "plain")
    plan.append(dict(i=i, kind=kind, prompt=rng.choice(PROMPTS), cancel_after=rng.randint(1, 3),
                     timeout=rng.uniform(0.001, 0.005)))

records = [None] * N
next_i = [0]
done_count = [0]
lock = threading.Lock()
start_load = [None]
warm_event = threading.Event()
stop_killer = threading.Event()

def take():
    with lock:
        i = next_i[0]
        if i >= N:
            return None
        next_i[0] += 1
        if RATE > 0:
            due = start_load[0] + i / RATE
        else:
            due = 0
    d = due - time.time()
    if d > 0:
        time.sleep(d)
    return plan[i]

def body(p, stream):
    b = {"prompt": p["prompt"], "max_tokens": p.get("max_tokens", MAX_TOKENS), "temperature": 0, "ignore_eos": True,
         "request_id": "soak-%d" % p["i"]}
    if stream:
        b["stream"] = True
        b["stream_options"] = {"include_usage": True}
    return json.dumps(b)

def run_one(p):
    rec = dict(i=p["i"], kind=p["kind"], prompt=p["prompt"], t0=now(), outcome=None, reason="", tokens=None,
               text=None, status=None, decode_worker=None, prefill_worker=None)
    stream = p["kind"] in ("stream", "cancel", "long")
    timeout = p["timeout"] if p["kind"] == "deadline" else 60
    conn = http.client.HTTPConnection(HOST, HTTP_PORT, timeout=timeout)
    try:
        conn.request("POST", "/v1/completions", body=body(p, stream), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        rec["status"] = resp.status
        if resp.status != 200:
            data = resp.read().decode("utf-8", "replace")
            try:
                msg = json.loads(data)["error"]["message"]
            except Exception:
                msg = data[:200]
            rec["outcome"], rec["reason"] = "failed", "http %d: %s" % (resp.status, msg[:160])
            return rec
        if not stream:
            j = json.loads(resp.read())
            rec["tokens"] = j.get("usage", {}).get("completion_tokens")
            rec["text"] = j["choices"][0]["text"]
            t = j.get("tandem", {})
            rec["decode_worker"], rec["prefill_worker"] = t.get("decode_worker"), t.get("prefill_worker")
        else:
            events, texts, done = 0, [], False
            while True:
                line = resp.fp.readline()
                if not line:
                    break
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    break
                j = json.loads(payload)
                if "error" in j:
                    rec["outcome"], rec["reason"] = "failed", "stream error: %s" % j["error"].get("message", "")[:160]
                    return rec
                events += 1
                for c in j.get("choices") or []:
                    texts.append(c.get("text", ""))
                if j.get("usage"):
                    rec["tokens"] = j["usage"].get("completion_tokens")
                if j.get("tandem"):
                    rec["decode_worker"] = j["tandem"].get("decode_worker")
                    rec["prefill_worker"] = j["tandem"].get("prefill_worker")
                if p["kind"] == "cancel" and events >= p["cancel_after"]:
                    try:
                        conn.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    conn.close()
                    rec["outcome"], rec["reason"] = "cancelled", "after %d events" % events
                    return rec
            if not done:
                rec["outcome"], rec["reason"] = "failed", "stream ended without [DONE] after %d events" % events
                return rec
            rec["text"] = "".join(texts)
        want = p.get("max_tokens", MAX_TOKENS)
        if rec["tokens"] != want:
            rec["outcome"], rec["reason"] = "failed", "completion_tokens %s != %d" % (rec["tokens"], want)
        elif p["kind"] == "cancel":
            rec["outcome"], rec["reason"] = "cancel_too_late", "finished before the cancel point"
        elif p["kind"] == "deadline":
            rec["outcome"] = "deadline_met"
        else:
            rec["outcome"] = "ok"
        return rec
    except (socket.timeout, TimeoutError) as e:
        if p["kind"] == "deadline":
            rec["outcome"], rec["reason"] = "deadline", "client timeout %.1f ms" % (timeout * 1000)
        else:
            rec["outcome"], rec["reason"] = "failed", "client timeout (60 s)"
        return rec
    except Exception as e:
        rec["outcome"], rec["reason"] = "failed", "%s: %s" % (type(e).__name__, str(e)[:160])
        return rec
    finally:
        rec["t1"] = now()
        conn.close()

def client():
    while True:
        p = take()
        if p is None:
            return
        rec = run_one(p)
        with lock:
            records[p["i"]] = rec
            done_count[0] += 1
            if done_count[0] == WARMUP:
                warm_event.set()

long_records = []
load_over = threading.Event()

def long_client(k):
    j = 0
    while not load_over.is_set():
        p = dict(i=N + 100000 * (k + 1) + j, kind="long", prompt=PROMPTS[(k * 5 + j) % len(PROMPTS)],
                 max_tokens=LONG_MAX_TOKENS, cancel_after=0, timeout=0)
        j += 1
        rec = run_one(p)
        with lock:
            long_records.append(rec)

# ---------------------------------------------------------------- killer
events = []  # dict(name, kill, restart, detected, recovered, pid_old, pid_new)

def router_healthy_flag(addr, role):
    m = metrics(ROUTER_METRICS)
    return m.get('tandem_worker_healthy{role="%s",worker="%s"}' % (role, addr))

def killer():
    order = ["prefill-0", "decode-0"]
    k = 0
    while not stop_killer.wait(KILL_EVERY):
        name = order[k % 2]; k += 1
        w = workers[name]
        if w["role"] == "decode":  # kill it mid-stream if it gets a stream within 5 s
            def running():
                return metrics(w["metrics"]).get('tandem_engine_running_requests{phase="decode"}', 0) > 0
            wait_until(running, 5, 0.01)
        victim_running = None
        try:
            victim_running = metrics(w["metrics"]).get('tandem_engine_running_requests{phase="%s"}' % w["role"])
        except Exception:
            pass
        ev = dict(name=name, pid_old=w["proc"].pid, kill=now(), victim_running=victim_running, detected=None, restart=None, listening=None,
                  recovered=None, inflight_at_kill=None)
        try:
            ev["inflight_at_kill"] = metrics(ROUTER_METRICS).get("tandem_router_inflight_requests")
        except Exception:
            pass
        w["proc"].send_signal(signal.SIGKILL)
        w["proc"].wait()
        log("SIGKILL", name, "pid", ev["pid_old"])
        # Router detection while the worker is down.
        end = time.time() + RESTART_DELAY
        while time.time() < end:
            try:
                if ev["detected"] is None and router_healthy_flag(w["addr"], w["role"]) == 0:
                    ev["detected"] = now()
            except Exception:
                pass
            time.sleep(0.02)
        w["restarts"] += 1
        for attempt in range(20):
            spawn(name)
            ok = wait_until(lambda: http_get(w["metrics"], "/metrics")[0] == 200, 10)
            if ok:
                break
            w["proc"].kill(); w["proc"].wait()
            log("restart of", name, "failed, retrying")
            time.sleep(0.5)
        ev["restart"] = now()
        ev["pid_new"] = w["proc"].pid
        ev["listening"] = now()
        def recovered():
            f = router_healthy_flag(w["addr"], w["role"])
            if f == 0 and ev["detected"] is None:
                ev["detected"] = now()
            return f == 1 and ev["detected"] is not None
        if wait_until(recovered, 30, 0.02):
            ev["recovered"] = now()
        log("restarted", name, "pid", ev["pid_new"], "event", {k2: (round(v, 2) if isinstance(v, float) else v)
                                                                for k2, v in ev.items()})
        events.append(ev)

# ---------------------------------------------------------------- run
rss_samples = []  # (t, {name: (pid, rss)})
def sample_rss():
    rss_samples.append((now(), {n: (p.pid, rss_kb(p.pid), nfds(p.pid)) for n, p in procs().items()}))

start_load[0] = time.time()
load_t0 = now()
threads = [threading.Thread(target=client, daemon=True) for _ in range(CONC)]
for t in threads:
    t.start()
long_threads = [threading.Thread(target=long_client, args=(k,), daemon=True) for k in range(LONG_CONC)]
for t in long_threads:
    t.start()
warm_event.wait()
warm_t = now()
time.sleep(1)
rss_warm = {n: (p.pid, rss_kb(p.pid), nfds(p.pid)) for n, p in procs().items()}
log("warm-up done:", rss_warm)
kt = threading.Thread(target=killer, daemon=True)
kt.start()
last = 0
while any(t.is_alive() for t in threads):
    time.sleep(1)
    if time.time() - last >= 30:
        last = time.time()
        sample_rss()
        with lock:
            c = collections.Counter(r["outcome"] for r in records if r)
        log("done %d/%d" % (done_count[0], N), dict(c))
load_t1 = now()
stop_killer.set()
kt.join()
load_over.set()
for t in long_threads:
    t.join()
# A restart in flight when the load ended is finished by kt.join(); wait for its recovery too.
log("load done in %.1f s; quiescing 5 s" % (load_t1 - load_t0))
time.sleep(5)

# ---------------------------------------------------------------- checks
kv_end = {}
for n in workers:
    try:
        kv_end[n] = kv_state(n)
    except Exception as e:
        kv_end[n] = (None, None, None)
def kv_ok(n, st):
    free, used, leases = st
    total = baseline_kv[n][0]
    return free == total and used == 0 and leases == 0
kv_pass = all(kv_ok(n, kv_end[n]) for n in workers)
# If not free at 5 s, report when it becomes free (a lease expiry, LEASE_MS, would show here).
kv_free_after = None
if not kv_pass:
    t_q = time.time()
    if wait_until(lambda: all(kv_ok(n, kv_state(n)) for n in workers), float(E["LEASE_MS"]) / 1000 + 10, 0.5):
        kv_free_after = time.time() - t_q + 5
rm_end = metrics(ROUTER_METRICS)
inflight_end = rm_end.get("tandem_router_inflight_requests")
rss_end = {n: (p.pid, rss_kb(p.pid), nfds(p.pid)) for n, p in procs().items()}
sample_rss()

# ---------------------------------------------------------------- figures
recs = [r for r in records if r] + long_records
outc = collections.Counter(r["outcome"] for r in recs)
by_kind = collections.defaultdict(collections.Counter)
for r in recs:
    by_kind[r["kind"]][r["outcome"]] += 1
fail_reasons = collections.Counter(re.sub(r"soak-\d+|r[0-9a-f]{8}-\d+", "ID", r["reason"]) for r in recs
                                   if r["outcome"] == "failed")
# Greedy decoding with ignore_eos: every complete answer to a prompt must be the same text, also the
# ones that were resumed on another pair after their decode worker died.
modal = {}
def key(r):
    return (r["prompt"], r["kind"] == "long")
for r in recs:
    pass
texts_by = collections.defaultdict(collections.Counter)
for r in recs:
    if r["outcome"] in ("ok", "deadline_met") and r["text"] is not None:
        texts_by[key(r)][r["text"]] += 1
for k2, c in texts_by.items():
    modal[k2] = c.most_common(1)[0][0]
mismatch = [r for r in recs if r["outcome"] in ("ok", "deadline_met") and r["text"] is not None
            and r["text"] != modal.get(key(r))]
long_ok = sum(1 for r in long_records if r["outcome"] == "ok")
# Failures near a kill: within [kill - 1 s, recovered + 2 s].
def near_kill(r):
    for ev in events:
        hi = (ev["recovered"] or ev["restart"] or ev["kill"]) + 2
        if ev["kill"] - 1 <= r["t1"] <= hi:
            return ev
    return None
fails = [r for r in recs if r["outcome"] == "failed"]
fails_near = collections.Counter()
for r in fails:
    ev = near_kill(r)
    fails_near[ev["name"] + "@%.0f" % ev["kill"] if ev else "not near a kill"] += 1
dur = load_t1 - load_t0
ok_lat = sorted(r["t1"] - r["t0"] for r in recs if r["outcome"] == "ok" and r["kind"] != "long")
def pct(a, q):
    return a[min(len(a) - 1, int(q * len(a)))] * 1000 if a else float("nan")

rss_rows, rss_pass = [], True
for n in list(workers) + ["router"]:
    pid0, r0, f0 = rss_warm[n]
    pid1, r1, f1 = rss_end[n]
    restarted = pid0 != pid1
    g = (r1 - r0) / r0 * 100 if (r0 and r1) else float("nan")
    if not restarted:
        ok = r1 is not None and r0 is not None and g < 5
        rss_pass &= ok
        verdict = "PASS" if ok else "FAIL"
    else:
        verdict = "restarted (not judged)"
    peak = max((s[1][n][1] or 0) for s in rss_samples if s[1][n][0] == pid1) if rss_samples else None
    rss_rows.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
        n, "%d -> %d" % (pid0, pid1) if restarted else pid1, r0, r1, peak,
        "%+.2f%%" % g if not restarted else "-", "%s -> %s" % (f0, f1), verdict))

failovers = rm_end.get("tandem_failovers_total", 0)
router_counts = {k.split('"')[1]: int(v) for k, v in rm_end.items() if k.startswith("tandem_requests_total{")}
router_log = open(os.path.join(WORKDIR, "router.log")).read()
recovery = [ev["recovered"] - ev["kill"] for ev in events if ev["recovered"]]
detect = [ev["detected"] - ev["kill"] for ev in events if ev["detected"]]

checks = [
    ("L1 KV blocks all free and no prefill lease held 5 s after quiesce", kv_pass,
     "" if kv_pass else ("free after %.1f s" % kv_free_after if kv_free_after else "still held after the lease time")),
    ("Router holds no request 5 s after quiesce (tandem_router_inflight_requests == 0)", inflight_end == 0,
     "inflight %s" % inflight_end),
    ("L3 RSS growth < 5% after warm-up (processes never restarted)", rss_pass, ""),
    ("Every complete greedy answer equals its prompt's modal text (no lost/duplicated tokens across failover)",
     not mismatch, "%d mismatches" % len(mismatch)),
    ("Every killed worker came back healthy in the router", len(recovery) == len(events) and events != [],
     "%d/%d" % (len(recovery), len(events))),
    ("No request failed away from a kill", fails_near.get("not near a kill", 0) == 0,
     "%d" % fails_near.get("not near a kill", 0)),
]
all_pass = all(c[1] for c in checks)

L = []
L.append("# Soak: %d requests, a worker SIGKILLed every %g s\n" % (N, KILL_EVERY))
L.append("Written by `bench/soak.sh` (not in CI; RELIABILITY.md L1-L4, issue 11).\n")
L.append("- Command: `%s`" % E["SOAK_CMDLINE"])
L.append("- Binary: `%s`, built %s (copied to the work dir at start, so a rebuild during the run does "
         "not change it)" % (E["TANDEM_SOURCE"], E["TANDEM_BUILT"]))
L.append("- Date: %s; commit %s; host: %d CPUs (`nproc`), load average at the end %s" % (
    time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), E["COMMIT"], os.cpu_count(),
    open("/proc/loadavg").read().split()[:3]))
L.append("- Cluster: `tandem mkmodel --preset %s`; 2 `tandem prefill` + 2 `tandem decode` (`--threads %s "
         "--kv-cache-mb 16`, prefill `--lease-ms %s`) and 1 `tandem router` (round_robin, health every 1 s), "
         "separate processes with a cluster secret, on loopback" % (E["PRESET"], E["WORKER_THREADS"], E["LEASE_MS"]))
L.append("- Load: %d client threads over the OpenAI HTTP API, offered %s; `max_tokens` %d, `temperature` 0, "
         "`ignore_eos`; %g%% cancels (stream, close the connection after 1-3 events), %g%% short client "
         "deadlines (1-5 ms timeout, the client closes the connection), the rest half streaming, half not" % (
             CONC, "%g req/s" % RATE if RATE else "as fast as the threads go", MAX_TOKENS, CANCEL_PCT, DEADLINE_PCT))
L.append("- Long streams: %d more client threads stream `max_tokens` %d greedy requests back to back for the "
         "whole run (%d requests, %d ok), so that kills find streams in flight" % (
             LONG_CONC, LONG_MAX_TOKENS, len(long_records), long_ok))
L.append("- Faults: every %g s SIGKILL of prefill-0 and decode-0 in turn, restarted on the same port after "
         "%g s; prefill-1, decode-1 and the router are never killed (their RSS is judged)" % (KILL_EVERY, RESTART_DELAY))
L.append("- Load ran %.1f s (%.1f req/s achieved); warm-up (RSS baseline) after %d requests at t=%.1f s. "
         "Raw records and logs: `%s` (not kept)\n" % (dur, len(recs) / dur if dur else 0, WARMUP, warm_t - load_t0, WORKDIR))
L.append("## Verdict: %s\n" % ("PASS" if all_pass else "FAIL"))
L.append("| check | result | note |\n| --- | --- | --- |")
for name, ok, note in checks:
    L.append("| %s | %s | %s |" % (name, "PASS" if ok else "FAIL", note))
L.append("\n## Requests\n")
L.append("| outcome | count |\n| --- | --- |")
for k in ("ok", "cancelled", "deadline", "deadline_met", "cancel_too_late", "failed"):
    L.append("| %s | %d |" % (k, outc.get(k, 0)))
L.append("| **total** | %d (%d short + %d long) |" % (len(recs), len(recs) - len(long_records), len(long_records)))
L.append("\nBy kind: " + "; ".join("%s %s" % (k, dict(v)) for k, v in sorted(by_kind.items())))
L.append("\nLatency of ok short requests (client side, ms): p50 %.1f, p90 %.1f, p99 %.1f, max %.1f" % (
    pct(ok_lat, .5), pct(ok_lat, .9), pct(ok_lat, .99), pct(ok_lat, 1)))
L.append("\nRouter counters at the end: `tandem_requests_total` %s; `tandem_failovers_total` %d "
         "(streams resumed on another pair after their decode worker died); the router counted %d requests, the "
         "client sent %d (a client cancel that lands after the last token is `ok` to the router)" % (
             router_counts, failovers, sum(router_counts.values()), len(recs)))
L.append("\n### Failed requests by reason\n")
if fail_reasons:
    L.append("| reason | count |\n| --- | --- |")
    for k, v in fail_reasons.most_common():
        L.append("| %s | %d |" % (k.replace("|", "\\|"), v))
else:
    L.append("None.")
L.append("\nFailures by the kill they fell near ([kill - 1 s, recovered + 2 s]): %s" % (dict(fails_near) or "none"))
L.append("\n## Kills and recovery (L4)\n")
L.append("Times in seconds from the start of the load. *detected*: the router's `tandem_worker_healthy` went "
         "to 0; *recovered*: back to 1 after the restart. *failed*: requests that failed within "
         "[kill - 1 s, recovered + 2 s].\n")
L.append("*p50 before / after*: client latency (ms) of the ok short requests that started in the 20 s before the "
         "kill / in the 20 s after recovery.\n")
L.append("| # | worker | pid old -> new | router in flight at kill | victim running | p50 before / after | kill | detected (+s) | restarted (+s) | recovered (+s) | failed |")
L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for j, ev in enumerate(events):
    f = lambda k: "%.2f" % (ev[k] - ev["kill"]) if ev.get(k) else "not seen"
    nf = sum(1 for r in fails if near_kill(r) is ev)
    def p50(lo, hi):
        a = sorted(r["t1"] - r["t0"] for r in recs if r["kind"] != "long" and r["outcome"] == "ok" and lo <= r["t0"] < hi)
        return "%.1f" % (a[len(a) // 2] * 1000) if a else "-"
    rec_t = ev["recovered"] or ev["restart"]
    L.append("| %d | %s | %d -> %d | %s | %s | %s / %s | %.1f | %s | %s | %s | %d |" % (
        j + 1, ev["name"], ev["pid_old"], ev["pid_new"], ev["inflight_at_kill"], ev["victim_running"],
        p50(ev["kill"] - 20, ev["kill"]), p50(rec_t, rec_t + 20), ev["kill"] - load_t0,
        f("detected"), f("restart"), f("recovered"), nf))
if detect:
    L.append("\nDetection: median %.2f s, max %.2f s. Recovery (kill to healthy again, including the %g s restart "
             "delay): median %.2f s, max %.2f s." % (statistics.median(detect), max(detect), RESTART_DELAY,
                                                     statistics.median(recovery) if recovery else float("nan"),
                                                     max(recovery) if recovery else float("nan")))
L.append("\n## KV blocks and leases 5 s after quiesce (L1)\n")
L.append("| worker | idle free blocks (start) | free | used | prefill leases held | result |\n| --- | --- | --- | --- | --- | --- |")
for n in workers:
    fr, us, le = kv_end[n]
    L.append("| %s%s | %s | %s | %s | %s | %s |" % (n, " (restarted %dx)" % workers[n]["restarts"] if workers[n]["restarts"] else "",
                                                baseline_kv[n][0], fr, us, le, "PASS" if kv_ok(n, kv_end[n]) else "FAIL"))
L.append("\n## RSS (L3)\n")
L.append("VmRSS from /proc/PID/status in KiB, after warm-up and 5 s after quiesce; peak over the 30 s samples of "
         "the final process. Bound here: < 5% (RELIABILITY.md L3 asks < 1% over 1 h; this run is shorter).\n")
L.append("| process | pid | RSS warm | RSS end | peak | growth | fds warm -> end | result |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
L.extend(rss_rows)
L.append("\n## Failover behaviour\n")
L.append("When a decode worker dies after streaming tokens, the router re-prefills prompt + generated tokens on "
         "a healthy pair and continues the same stream (RELIABILITY F3; `tandem_failovers_total` above); the "
         "text check above compares every complete answer with the modal answer for its prompt. Requests "
         "placed on a worker in the window before the router notices it is gone (a transport error or the "
         "next 1 s health check) can fail; they are the failures listed per kill. The router log "
         "mentioned failover/resume %d times." % len(re.findall(r"(?i)failover|resum", router_log)))
if mismatch:
    L.append("\nText mismatches (first 5): " + "; ".join("#%d %s %r vs %r" % (r["i"], r["kind"], r["text"], modal[key(r)])
                                                      for r in mismatch[:5]))
open(OUT, "w").write("\n".join(L) + "\n")
with open(os.path.join(WORKDIR, "records.jsonl"), "w") as f:
    for r in recs:
        f.write(json.dumps(r) + "\n")
log("wrote", OUT, "verdict", "PASS" if all_pass else "FAIL")

for p in procs().values():
    p.send_signal(signal.SIGTERM)
for p in procs().values():
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
try:
    os.remove(TANDEM)  # the private copy of the binary (~150 MB); logs and records stay in WORKDIR
except OSError:
    pass
sys.exit(0 if all_pass else 1)
PY
