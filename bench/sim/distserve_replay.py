#!/usr/bin/python3
"""Replays DistServe's measured OPT-13B runs (../shared/testdata/distserve-opt13b-sharegpt, format in its
README) through `tandem sim` with the exact arrivals and lengths, and compares joint SLO attainment
(TTFT < 200 ms and TPOT < 100 ms, DistServe's alignment SLOs) and P90 TTFT/TPOT with what was measured.

  /usr/bin/python3 bench/sim/distserve_replay.py build/cli/tandem [--check] [-- extra tandem sim flags]

--check exits 1 when a family's mean attainment error exceeds its regression bound below (see
bench/sim/distserve.md for the issue's goals). Every family runs on tandem sim's defaults; only the
placement differs, and the DistServe families get the prefill batch limits their runs were made with.
"""
import json
import os
import subprocess
import sys
import tempfile

from measured_runs import read_run, write_trace

TTFT_SLO_MS = 200.0
TPOT_SLO_MS = 100.0
# Regression bounds on the mean |attainment error| in points, so a change that makes the simulator
# worse fails CI: issue 13's goals for c21d12 (5.0) and vLLM (4.0), today's c21d11 figure plus a
# margin (its goal is 2.0). Not tighter: +-1-3% of decode step time moves the c21d12 and vLLM means by
# up to 2.5 points (bench/sim/distserve.md, "How robust the figures are").
BOUNDS = {"c21d11": 2.5, "c21d12": 5.0, "vllm": 4.0}


def family(name):
    if name.startswith("vllm"):
        return "vllm"
    return name.split("-")[1]


# The context (prefill) instance's batch limits the DistServe runs were made with
# (evaluation/2-benchmark-serving/2-start-api-server.py: --context-max-tokens-per-batch 8192
# --context-max-batch-size 128); tandem sim's default is DistServe's simulator's, the KV capacity.
DISTSERVE_PREFILL_LIMITS = ["--prefill-max-batch-tokens", "8192", "--prefill-max-batch-size", "128"]


def sim_flags(fam):
    if fam == "c21d11":
        return ["--prefill-tp", "2", "--decode-tp", "1"] + DISTSERVE_PREFILL_LIMITS
    if fam == "c21d12":
        return ["--prefill-tp", "2", "--decode-tp", "1", "--decode-pp", "2"] + DISTSERVE_PREFILL_LIMITS
    if fam == "vllm":
        return ["--num-colocated", "1", "--colocated-tp", "1"]
    raise ValueError(fam)


def p90(values):
    v = sorted(values)
    if not v:
        return float("nan")
    return v[min(len(v) - 1, int(0.9 * len(v)))]


# A second micro-batch in a pipeline-parallel decode instance shows in when requests complete: with
# one micro-batch (cycle 40-90 ms in these runs) completions come a whole cycle apart or together in
# one step; a second one, launched behind the first, completes its requests a stage later, 8-28 ms
# after the first's (bench/sim/distserve.md, "DistServe's step loop").
SECOND_MICRO_BATCH_GAP_MS = (8.0, 28.0)


def micro_batch_signature(complete_times_s):
    """(completions 8-28 ms after the previous one per 100 completions, start of the first 10 s window
    holding two or more of them, or None)."""
    t = sorted(complete_times_s)
    t0 = t[0] if t else 0.0
    lo, hi = SECOND_MICRO_BATCH_GAP_MS
    hits = [b - t0 for a, b in zip(t, t[1:]) if lo <= (b - a) * 1e3 < hi]
    windows = {}
    for h in hits:
        windows[int(h // 10) * 10] = windows.get(int(h // 10) * 10, 0) + 1
    first = min((w for w, n in windows.items() if n >= 2), default=None)
    return 100.0 * len(hits) / max(1, len(t) - 1), first


def attainment(pairs):
    ok = sum(1 for ttft, tpot in pairs if ttft < TTFT_SLO_MS and tpot < TPOT_SLO_MS)
    return 100.0 * ok / len(pairs)


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        extra = args[args.index("--") + 1:]
        args = args[:args.index("--")]
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    tandem = args[0] if args else "build/cli/tandem"
    here = os.path.dirname(os.path.abspath(__file__))
    data = os.environ.get("TANDEM_SHARED_DIR", os.path.join(here, "..", "..", "..", "shared"))
    data = os.path.join(data, "testdata", "distserve-opt13b-sharegpt")
    if not os.path.isdir(data):
        print(f"SKIP: {data} is absent (shared/testdata not checked out)")
        return 77
    runs = sorted(f for f in os.listdir(data) if f.endswith(".exp"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            trace = os.path.join(tmp, run + ".csv")
            reqs = write_trace(read_run(os.path.join(data, run)), trace)
            records = os.path.join(tmp, run + ".jsonl")
            fam = family(run[:-4])
            cmd = [tandem, "sim", "--trace", trace, "--ttft-slo-ms", str(TTFT_SLO_MS), "--tpot-slo-ms",
                   str(TPOT_SLO_MS), "--output-records", records] + sim_flags(fam) + extra
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{run}: tandem sim failed: {done.stderr.strip()}", file=sys.stderr)
                return 1
            sim = [json.loads(line) for line in open(records) if line.strip()]
            measured = [(r["ttft_ms"], r["tpot_ms"] if r["output_len"] > 1 else 0.0) for r in reqs]
            simulated = [(s["ttft_ms"], s["tpot_ms"]) for s in sim if s.get("ttft_ms") is not None]
            if len(simulated) != len(measured):
                print(f"{run}: {len(simulated)} simulated records for {len(measured)} requests", file=sys.stderr)
            rows.append({
                "run": run[:-4], "family": fam,
                "measured": attainment(measured), "simulated": attainment(simulated),
                "ttft_p90": (p90([m[0] for m in measured]), p90([s[0] for s in simulated])),
                "tpot_p90": (p90([m[1] for m in measured]), p90([s[1] for s in simulated])),
                "signature": (micro_batch_signature([r["complete_time"] for r in reqs if r["output_len"] > 1]),
                              micro_batch_signature([s["finish_s"] for s in sim
                                                     if s.get("finished") and s["output_len"] > 1])),
            })
    print("| run | measured attainment % | tandem sim % | error (points) | P90 TTFT ms measured / sim | "
          "P90 TPOT ms measured / sim |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['run']} | {r['measured']:.1f} | {r['simulated']:.1f} | {r['simulated'] - r['measured']:+.1f} | "
              f"{r['ttft_p90'][0]:.0f} / {r['ttft_p90'][1]:.0f} | {r['tpot_p90'][0]:.1f} / {r['tpot_p90'][1]:.1f} |")
    failed = False
    print()
    for fam in sorted({r["family"] for r in rows}):
        errs = [abs(r["simulated"] - r["measured"]) for r in rows if r["family"] == fam]
        mean = sum(errs) / len(errs)
        bound = BOUNDS.get(fam)
        verdict = "not checked" if bound is None else ("ok" if mean <= bound else "OVER the regression bound")
        print(f"{fam}: mean |error| {mean:.1f} points, max {max(errs):.1f} over {len(errs)} runs "
              f"(bound {bound if bound is not None else '-'}): {verdict}")
        # The other two figures: P90 TPOT below capacity (measured attainment >= 90%) and the
        # P90 TTFT tail past it (measured attainment < 25%), as sim / measured.
        below = [r["tpot_p90"][1] / r["tpot_p90"][0] for r in rows if r["family"] == fam and r["measured"] >= 90]
        past = [r["ttft_p90"][1] / r["ttft_p90"][0] for r in rows if r["family"] == fam and r["measured"] < 25]
        if below:
            print(f"  P90 TPOT sim / measured below capacity: {', '.join(f'{x:.2f}' for x in below)}")
        if past:
            print(f"  P90 TTFT sim / measured past capacity: {', '.join(f'{x:.2f}' for x in past)}")
        if fam == "c21d12":
            print("  second decode micro-batch (completions 8-28 ms apart per 100; from when), measured / sim:")
            for r in rows:
                if r["family"] != fam:
                    continue
                (m, m_from), (s_, s_from) = r["signature"]
                when = lambda t: "never" if t is None else f"{t} s"
                print(f"    {r['run']}: {m:.1f} from {when(m_from)} / {s_:.1f} from {when(s_from)}")
        failed |= bound is not None and mean > bound
    return 1 if (check and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
