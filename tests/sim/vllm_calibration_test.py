#!/usr/bin/python3
"""The built-in vllm-a100 profile is what bench/sim/calibrate_from_trace.py derives from DistServe's
measured vLLM runs (bench/sim/distserve.md), and tandem simulates with it exactly as with that file.

    /usr/bin/python3 tests/sim/vllm_calibration_test.py build/cli/tandem

Exit 77 (skip) when ../shared/testdata is absent; 1 with the differing numbers when the calibration
no longer reproduces the committed profile or the built-in differs from it.
"""
import ast
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
PROFILES = os.path.join(ROOT, "bench", "sim", "profiles")


def numbers(value, path=""):
    if isinstance(value, dict):
        for k, v in sorted(value.items()):
            yield from numbers(v, f"{path}.{k}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, float(value)


def main():
    tandem = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "cli", "tandem")
    shared = os.environ.get("TANDEM_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
    data = os.path.join(shared, "testdata", "distserve-opt13b-sharegpt")
    if not os.path.isdir(data):
        print(f"SKIP: {data} is absent (shared/testdata not checked out)")
        return 77
    committed_path = os.path.join(PROFILES, "vllm-a100-opt13b-calibrated.json")
    committed = json.load(open(committed_path))
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "calibrated.json")
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "sim", "calibrate_from_trace.py"),
                        "--base", os.path.join(PROFILES, "vllm-a100-opt13b-published.json"),
                        "--prefill-from", os.path.join(data, "vllm-100-1.exp"),
                        "--decode-overhead-from", os.path.join(data, "vllm-150-1.5.exp"),
                        "--tandem", tandem, "--out", out], check=True, capture_output=True)
        derived = dict(numbers(json.load(open(out))))
        for key, value in numbers(committed):
            if abs(derived.get(key, float("nan")) - value) > 1e-6 * max(1.0, abs(value)):
                failures.append(f"{key}: calibration gives {derived.get(key)}, committed {value}")
        # The same run written as `tandem bench --out` writes it gives the same prefill fit.
        with open(os.path.join(data, "vllm-100-1.exp")) as f:
            reqs = ast.literal_eval(f.readline())
        bench = {"requests": [{"input_len": r["prompt_len"], "output_len": r["output_len"],
                               "start_time": r["issue_time"], "ttft_ms": r["ttft_ms"],
                               "e2e_ms": r["latency_ms"], "status": "OK"} for r in reqs]}
        bench["requests"].append({"input_len": 9, "output_len": 4, "start_time": reqs[0]["issue_time"],
                                  "ttft_ms": None, "e2e_ms": None, "status": "UNAVAILABLE"})  # left out
        bench_path = os.path.join(tmp, "bench.json")
        with open(bench_path, "w") as f:
            json.dump(bench, f)
        fits = []
        for run in (os.path.join(data, "vllm-100-1.exp"), bench_path):
            fitted = os.path.join(tmp, "fit.json")
            subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "sim", "calibrate_from_trace.py"),
                            "--base", os.path.join(PROFILES, "vllm-a100-opt13b-published.json"),
                            "--prefill-from", run, "--out", fitted], check=True, capture_output=True)
            fits.append(json.load(open(fitted))["prefill"])
        for key in "abc":
            if abs(fits[0][key] - fits[1][key]) > 1e-6 * max(1.0, abs(fits[0][key])):
                failures.append(f"prefill.{key}: {fits[0][key]} from the .exp run, {fits[1][key]} from its "
                                "tandem bench form")
        # Bad input names the file, with no traceback.
        empty = os.path.join(tmp, "empty.exp")
        open(empty, "w").close()
        for flag, path in (("--prefill-from", os.path.join(tmp, "missing.exp")), ("--prefill-from", empty),
                           ("--base", os.path.join(tmp, "missing.json"))):
            args = ["--base", os.path.join(PROFILES, "vllm-a100-opt13b-published.json"),
                    "--prefill-from", os.path.join(data, "vllm-100-1.exp")]
            args[args.index(flag) + 1] = path
            done = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "sim", "calibrate_from_trace.py")]
                                  + args + ["--out", os.path.join(tmp, "bad.json")], capture_output=True, text=True)
            if done.returncode == 0 or path not in done.stderr or "Traceback" in done.stderr:
                failures.append(f"{flag} {path}: exit {done.returncode}, stderr {done.stderr.strip()[-200:]!r}")
        # The built-in set simulates exactly as the committed file.
        outputs = []
        for profiles in ("vllm-a100", committed_path):
            records = os.path.join(tmp, f"records{len(outputs)}.jsonl")
            subprocess.run([tandem, "sim", "--num-colocated", "1", "--rate", "2", "--num-requests", "300",
                            "--seeds", "1", "--colocated-profiles", profiles, "--output-records", records],
                           check=True, capture_output=True)
            outputs.append(open(records).read())
        a = [json.loads(line) for line in outputs[0].splitlines() if line.strip()]
        b = [json.loads(line) for line in outputs[1].splitlines() if line.strip()]
        if len(a) != len(b) or not a:
            failures.append(f"tandem sim gave {len(a)} records with vllm-a100 and {len(b)} with the file")
        for x, y in zip(a, b):
            for (key, u), (_, v) in zip(numbers(x), numbers(y)):
                if abs(u - v) > 1e-6 * max(1.0, abs(u)):
                    failures.append(f"request {x['id']} {key}: {u} with vllm-a100, {v} with the committed file")
                    break
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("ok: vllm-a100 = calibrate_from_trace.py on vllm-100-1 (prefill) and vllm-150-1.5 (decode)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
