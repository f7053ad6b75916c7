"""Measured per-request runs, as the bench/sim scripts read them and hand them to `tandem sim`."""
import ast
import json


def read_run(path):
    """A measured run: DistServe's `.exp` (a Python literal list of requests: prompt_len, output_len,
    issue_time, first_token_time, complete_time, ttft_ms, tpot_ms) or the JSON `tandem bench --out`
    writes (its "requests": input_len, output_len, start_time, ttft_ms, e2e_ms; failed or unfinished
    requests are left out), as DistServe-style records."""
    try:
        with open(path) as f:
            text = f.read()
        if not text.lstrip().startswith("{"):
            return ast.literal_eval(text.splitlines()[0])
        requests = json.loads(text).get("requests", [])
    except (OSError, ValueError, SyntaxError, IndexError) as e:
        raise SystemExit(f"{path}: not a readable .exp or tandem bench --out run ({type(e).__name__}: {e})")
    out = []
    for r in requests:
        if r.get("status") not in (None, "OK", "ok") or r.get("ttft_ms") is None or r.get("e2e_ms") is None:
            continue
        start = r["start_time"]
        first = start + r["ttft_ms"] / 1e3
        done = start + r["e2e_ms"] / 1e3
        n = r["output_len"]
        out.append({"prompt_len": r["input_len"], "output_len": n, "issue_time": start,
                    "first_token_time": first, "complete_time": done, "ttft_ms": r["ttft_ms"],
                    "tpot_ms": (done - first) * 1e3 / (n - 1) if n > 1 else 0.0})
    if not out:
        raise SystemExit(f"{path}: no finished requests")
    return out


def write_trace(reqs, path):
    """Writes `reqs` as a `tandem sim --trace` CSV (arrivals from the first one) and returns them in
    arrival order, the order of the records tandem sim writes for it."""
    ordered = sorted(reqs, key=lambda r: r["issue_time"])
    t0 = ordered[0]["issue_time"]
    with open(path, "w") as f:
        f.write("arrival_s,prompt_len,output_len\n")
        for r in ordered:
            f.write(f"{r['issue_time'] - t0:.6f},{r['prompt_len']},{r['output_len']}\n")
    return ordered


def read_sim_records(path):
    """The finished requests of `tandem sim --output-records` (JSON lines) as the fields read_run gives a
    measured run: output_len, first_token_time, complete_time, tpot_ms."""
    try:
        with open(path) as f:
            recs = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: not readable tandem sim records ({type(e).__name__}: {e})")
    return [{"output_len": r["output_len"], "first_token_time": r["first_token_s"],
             "complete_time": r["finish_s"], "tpot_ms": r["tpot_ms"]}
            for r in recs if r.get("finished") and r.get("first_token_s") is not None]
