"""Training noise across seeds: the spread of the committed metrics over several experiments.

    dvc exp run --queue -S seed=2027 -S seed=2028 ...   # or: dvc exp run --queue -S 'seed=2027,2028'
    dvc queue start -j 2 && dvc queue status            # wait until they are done
    python benchmarks/seed_spread.py HEAD <exp-name> <exp-name> [--json]

Each argument is a git revision or a DVC experiment name (resolved through ``refs/exps``); the
script reads ``reports/metrics.json`` at each and prints, per scenario, the mean and the standard
deviation across them (and the min..max) of the base and LoRA gaps to the genie and of the LoRA
gain, and in how many runs the gain's paired 95% interval lies above zero. A change of ``seed`` re-draws the PDPs, the split and the training, but not the test sets'
own seed: the spread is that of the whole pipeline, an upper bound on training noise alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess


def metrics_at(rev: str) -> dict:
    refs = subprocess.run(["git", "for-each-ref", "refs/exps", "--format=%(refname) %(objectname)"],
                          capture_output=True, text=True, check=True).stdout.split("\n")
    named = {r.split()[0].rsplit("/", 1)[-1]: r.split()[1] for r in refs if r.strip()}
    out = subprocess.run(["git", "show", f"{named.get(rev, rev)}:reports/metrics.json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def spread(values: list[float]) -> dict:
    return {"mean": round(statistics.fmean(values), 3), "sd": round(statistics.stdev(values), 3),
            "min": round(min(values), 3), "max": round(max(values), 3), "n": len(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("revs", nargs="+", help="git revisions or DVC experiment names (>= 2)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs = [metrics_at(r) for r in args.revs]
    table = {}
    for scenario in runs[0]:
        row = {"base_gap": spread([m[scenario]["base"]["gap_to_genie_db"] for m in runs])}
        if "lora" in runs[0][scenario]:
            row["lora_gap"] = spread([m[scenario]["lora"]["gap_to_genie_db"] for m in runs])
            row["lora_gain"] = spread([m[scenario]["lora_gain_db"] for m in runs])
            # in how many runs the paired 95% interval of the gain lies above zero
            row["lora_gain_ci_above_zero"] = sum(m[scenario]["lora_gain_ci_db"][0] > 0 for m in runs)
        table[scenario] = row
    if args.json:
        print(json.dumps(table, indent=2))
        return
    print(f"| scenario | base gap (dB) | LoRA gap (dB) | LoRA gain (dB) | gain CI > 0 |  ({len(runs)} runs: "
          "mean +- sd [min..max])")
    print("| --- | --- | --- | --- | --- |")
    for scenario, row in table.items():
        cells = [f"{c['mean']:.2f} +- {c['sd']:.2f} [{c['min']:.2f}..{c['max']:.2f}]" if c else ""
                 for c in (row.get("base_gap"), row.get("lora_gap"), row.get("lora_gain"))]
        above = f"{row['lora_gain_ci_above_zero']}/{len(runs)}" if "lora_gain" in row else ""
        print(f"| {scenario} | " + " | ".join(cells) + f" | {above} |")


if __name__ == "__main__":
    main()
