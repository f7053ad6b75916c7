#!/usr/bin/python3
"""`tandem sim --distserve-step-loop` against DistServe's measured c21d12-400-4 (prefill TP2, decode TP1 x
PP2 at 4 req/s), where the real decode engine ran one micro-batch the whole run (bench/sim/distserve.md,
"DistServe's step loop"): replayed step by step, the simulated run must also never start a second
micro-batch, its TPOT must grow with the running requests as the measured one does (the TP1 step's
slope, within 15%), and its P90 TPOT must be within 10% of the measured one.

    /usr/bin/python3 tests/sim/distserve_step_loop_test.py build/cli/tandem

Exit 77 (skip) when ../shared/testdata is absent; 1 naming the figure that is off.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "bench", "sim"))
from distserve_replay import TPOT_SLO_MS, TTFT_SLO_MS, micro_batch_signature, p90, sim_flags  # noqa: E402
from measured_runs import read_run, read_sim_records, write_trace  # noqa: E402
from tpot_vs_running import fit_line, points  # noqa: E402


def main():
    tandem = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "cli", "tandem")
    shared = os.environ.get("TANDEM_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
    run = os.path.join(shared, "testdata", "distserve-opt13b-sharegpt", "distserve-c21d12-400-4.exp")
    if not os.path.isfile(run):
        print(f"SKIP: {run} is absent (shared/testdata not checked out)")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        trace, records = os.path.join(tmp, "trace.csv"), os.path.join(tmp, "records.jsonl")
        measured = write_trace(read_run(run), trace)
        subprocess.run([tandem, "sim", "--trace", trace, "--ttft-slo-ms", str(TTFT_SLO_MS), "--tpot-slo-ms",
                        str(TPOT_SLO_MS), "--output-records", records, "--distserve-step-loop"] + sim_flags("c21d12"),
                       check=True, capture_output=True)
        simulated = read_sim_records(records)
    failures = []
    if len(simulated) != len(measured):
        failures.append(f"{len(simulated)} of {len(measured)} requests finished")
    per100, since = micro_batch_signature([s["complete_time"] for s in simulated if s["output_len"] > 1])
    if since is not None:
        failures.append(f"a second micro-batch from {since} s ({per100:.1f} completions per 100 8-28 ms apart); "
                        "the measured run had none")
    measured_slope, sim_slope = fit_line(points(measured))[1], fit_line(points(simulated))[1]
    if abs(sim_slope / measured_slope - 1) > 0.15:
        failures.append(f"TPOT grows {sim_slope:.3f} ms per running request, measured {measured_slope:.3f}")
    m90 = p90([r["tpot_ms"] for r in measured if r["output_len"] > 1])
    s90 = p90([s["tpot_ms"] for s in simulated if s["output_len"] > 1])
    if abs(s90 / m90 - 1) > 0.10:
        failures.append(f"P90 TPOT {s90:.1f} ms, measured {m90:.1f}")
    for f in failures:
        print(f"FAIL: {f}")
    if not failures:
        print(f"ok: no second micro-batch; TPOT slope {sim_slope:.3f} / {measured_slope:.3f} ms per running "
              f"request; P90 TPOT {s90:.1f} / {m90:.1f} ms (sim / measured)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
