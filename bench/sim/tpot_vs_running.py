#!/usr/bin/python3
"""TPOT against the number of requests decoding at the same time, for measured runs (DistServe's .exp
or `tandem bench --out` JSON) or simulated ones (`tandem sim --output-records` JSON lines): the step time
a decode instance showed as its batch grew.

  /usr/bin/python3 bench/sim/tpot_vs_running.py RUN.exp|RECORDS.jsonl [...]

For every request with 20+ output tokens, the mean number of requests between their first token and
completion while it was in that phase; requests in four quartiles of that number, each with its median
TPOT; and the least-squares line TPOT = intercept + slope * running over all of them. One decode step
per token makes the slope the step's cost per running request (bench/sim/distserve.md uses it to tell
one pipeline micro-batch from two).
"""
import statistics
import sys

from measured_runs import read_run, read_sim_records


def read_any(path):
    """A measured run, or tandem sim's records (.jsonl) as the same fields."""
    return read_sim_records(path) if path.endswith(".jsonl") else read_run(path)


def points(reqs):
    spans = [(r["first_token_time"], r["complete_time"]) for r in reqs]
    out = []
    for r in reqs:
        if r["output_len"] < 20:
            continue
        a, b = r["first_token_time"], r["complete_time"]
        overlap = sum(max(0.0, min(b, d) - max(a, c)) for c, d in spans)
        out.append((overlap / (b - a), r["tpot_ms"]))
    return sorted(out)


def fit_line(pts):
    """Least squares TPOT = intercept + slope x running over points(): (intercept, slope)."""
    mx = statistics.fmean(p[0] for p in pts)
    my = statistics.fmean(p[1] for p in pts)
    slope = sum((a - mx) * (b - my) for a, b in pts) / sum((a - mx) ** 2 for a, _ in pts)
    return my - slope * mx, slope


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    for path in sys.argv[1:]:
        pts = points(read_any(path))
        if len(pts) < 8:
            print(f"{path}: fewer than 8 requests with 20+ output tokens")
            continue
        intercept, slope = fit_line(pts)
        print(f"{path}: TPOT = {intercept:.1f} ms + {slope:.3f} ms x running ({len(pts)} requests)")
        k = len(pts) // 4
        for i in range(4):
            seg = pts[i * k:(i + 1) * k] if i < 3 else pts[3 * k:]
            print(f"  running {statistics.fmean(p[0] for p in seg):6.1f}: median TPOT "
                  f"{statistics.median(p[1] for p in seg):6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
