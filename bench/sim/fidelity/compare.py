"""Measured (`tandem bench --rates --out`) against simulated (`tandem sim --rates --output_summary`).

    /usr/bin/python3 bench/sim/fidelity/compare.py measured.json simulated.json

Prints, per offered rate, joint attainment (percentage points apart), P90 TTFT and P90 TPOT (relative
difference of the simulation from the measurement), and the mean five-stage breakdown of both. The rows
"near the 90% point" are the two rates that bracket the measured crossing of the attainment target (the
highest rate that meets it and the next one up); the issue's bar, checked there: attainment within 5
points, P90 TTFT and P90 TPOT within 10%. Standard library only.
"""
import json
import sys


def load(measured_path, simulated_path):
    measured = json.load(open(measured_path))
    simulated = json.load(open(simulated_path))
    runs = measured["runs"] if isinstance(measured, dict) and "runs" in measured else [measured]
    by_rate = {round(s["request_rate"], 6): s for s in simulated}
    pairs = []
    for m in runs:
        rate = round(m["request_rate"], 6)
        if rate not in by_rate:
            sys.exit(f"rate {rate} was measured but not simulated")
        pairs.append((rate, m, by_rate[rate]))
    return pairs, measured.get("attainment_target", 0.9) if isinstance(measured, dict) else 0.9


def rel(sim, meas):
    return (sim - meas) / meas if meas else float("nan")


def main():
    pairs, target = load(sys.argv[1], sys.argv[2])
    meets = [m["attainment"] >= target for _, m, _ in pairs]
    near = set()
    for i, ok in enumerate(meets):
        if ok and (i + 1 == len(meets) or not meets[i + 1]):
            near.add(i)
            if i + 1 < len(meets):
                near.add(i + 1)
    if not any(meets) and pairs:
        near.add(0)

    print("rate   attain%  meas   sim   diff(pp) | P90 TTFT ms  meas     sim     diff | "
          "P90 TPOT ms  meas    sim    diff | near")
    verdicts = []
    for i, (rate, m, s) in enumerate(pairs):
        da = 100 * (s["attainment"] - m["attainment"])
        dt = rel(s["p90_ttft_ms"], m["p90_ttft_ms"])
        dp = rel(s["p90_tpot_ms"], m["p90_tpot_ms"])
        mark = ""
        if i in near:
            ok = abs(da) <= 5 and abs(dt) <= 0.10 and abs(dp) <= 0.10
            verdicts.append(ok)
            mark = "yes: " + ("within" if ok else "OUTSIDE") + " 5 pp / 10%"
        print(f"{rate:<6g} {'':7} {100 * m['attainment']:6.1f} {100 * s['attainment']:6.1f} {da:+7.1f}   | "
              f"{'':11} {m['p90_ttft_ms']:8.1f} {s['p90_ttft_ms']:8.1f} {100 * dt:+5.0f}% | "
              f"{'':11} {m['p90_tpot_ms']:6.2f} {s['p90_tpot_ms']:6.2f} {100 * dp:+5.0f}% | {mark}")

    print("\nmean stage breakdown, ms (measured by the router / simulated):")
    print("rate   prefill queue     prefill compute   KV transfer       decode queue      decode compute")
    keys = ["mean_prefill_queue_ms", "mean_prefill_compute_ms", "mean_kv_transfer_ms", "mean_decode_queue_ms",
            "mean_decode_compute_ms"]
    for rate, m, s in pairs:
        cells = "".join(f"{m.get(k, float('nan')):7.1f} /{s.get(k, float('nan')):7.1f}  " for k in keys)
        print(f"{rate:<6g} {cells}")

    def goodput(side):
        ok = [rate for rate, m, s in pairs if (m if side == 0 else s)["attainment"] >= target]
        return max(ok) if ok else None
    print(f"\ngoodput (highest swept rate with attainment >= {100 * target:g}%): "
          f"measured {goodput(0)}, simulated {goodput(1)}")
    if verdicts:
        print("near the 90% point: " + ("all within" if all(verdicts) else "NOT all within") + " 5 pp / 10%")


if __name__ == "__main__":
    main()
