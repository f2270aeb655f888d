"""Where the time of one adapter experiment goes: ``dvc exp run -S lora.r=R``, stage by stage.

    python benchmarks/bench_adapter_loop.py [--rank 8] [--json] [--restore]

Run in a workspace whose default pipeline is up to date (after ``make repro``): it runs the
experiment there, time-stamps every line DVC and the stages print, and splits the wall time into

- ``dvc``: before the first stage and after the last (DVC collecting, hashing, committing);
- per stage: ``startup`` (from DVC's "Running stage" to the stage's first log line: process start,
  imports, the params), ``training`` (the adapters' own ``wall_s`` from ``reports/transfer/*.json``),
  ``evaluation`` (the evaluation lines' own "in X s"), and ``other`` (data, loading, saving, figures).

It prints the totals and the issue's yardstick ``total / (1.25 * sum(wall_s) + 45 s)`` (<= 1 is
the goal). A rank whose results are already in DVC's run-cache is restored, not run: the stages
it skips are listed as ``cached``; pick a rank not run on this code (or clear ``.dvc/cache/runs``).
With ``--restore`` the workspace goes back to the committed params and outputs afterwards
(``git checkout`` of params, lock and reports, then ``dvc checkout``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNING = re.compile(r"Running stage '([^']+)'")
CACHED = re.compile(r"Stage '([^']+)' is cached")
EVAL_LINE = re.compile(r" on \d+ samples in ([0-9.]+) s")


def timed_lines(cmd: list[str]) -> list[tuple[float, str]]:
    """Run ``cmd``; every line of its stdout and stderr with its time (s since the start)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DVC_NO_ANALYTICS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    lines = []
    for line in proc.stdout:
        lines.append((time.perf_counter() - t0, line.rstrip("\n")))
    lines.append((time.perf_counter() - t0, ""))
    if proc.wait() != 0:
        sys.stderr.write("\n".join(text for _, text in lines[-40:]) + "\n")
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    return lines


def breakdown(lines: list[tuple[float, str]]) -> dict:
    """Per-stage times from the time-stamped output of ``dvc exp run``."""
    starts = [(t, m.group(1)) for t, text in lines if (m := RUNNING.search(text))]
    cached = [m.group(1) for _, text in lines if (m := CACHED.search(text))]
    total = lines[-1][0]
    stages = {}
    for i, (t, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else total
        own = [(u, text) for u, text in lines if t < u <= end and text and not RUNNING.search(text)]
        # the stage's first own log line ("HH:MM:SS name LEVEL ..."): startup ends there
        first = next((u for u, text in own if re.match(r"\d\d:\d\d:\d\d ", text)), end)
        last = max((u for u, text in own if re.match(r"\d\d:\d\d:\d\d ", text)), default=end)
        evaluation = sum(float(m.group(1)) for _, text in own if (m := EVAL_LINE.search(text)))
        stages[name] = {"wall_s": round(end - t, 2), "startup_s": round(first - t, 2),
                        "after_last_line_s": round(end - last, 2), "evaluation_s": round(evaluation, 2)}
    return {"total_s": round(total, 1), "before_first_stage_s": round(starts[0][0], 1) if starts else total,
            "stages": stages, "cached": cached}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--restore", action="store_true",
                        help="put the committed params and outputs back afterwards")
    args = parser.parse_args()
    lines = timed_lines(["dvc", "exp", "run", "-S", f"lora.r={args.rank}"])
    result = {"rank": args.rank, "cpus": os.cpu_count(), **breakdown(lines)}
    train = {}
    for path in sorted((ROOT / "reports" / "transfer").glob("*.json")):
        name = f"transfer@{path.stem}"
        if name in result["stages"]:
            train[name] = json.loads(path.read_text())["wall_s"]
            result["stages"][name]["training_s"] = train[name]
    for entry in result["stages"].values():
        entry["other_s"] = round(entry["wall_s"] - entry["startup_s"] - entry.get("training_s", 0.0)
                                 - entry["evaluation_s"], 2)
    groups = {}
    for name, entry in result["stages"].items():
        group = groups.setdefault(name.split("@")[0], {"n": 0, "wall_s": 0.0, "startup_s": 0.0})
        group["n"] += 1
        group["wall_s"] = round(group["wall_s"] + entry["wall_s"], 1)
        group["startup_s"] = round(group["startup_s"] + entry["startup_s"], 1)
    result["by_stage"] = groups
    result["training_wall_s"] = round(sum(train.values()), 1)
    result["budget_s"] = round(1.25 * result["training_wall_s"] + 45.0, 1)
    result["total_over_budget"] = round(result["total_s"] / result["budget_s"], 3)
    result["total_over_training"] = round(result["total_s"] / max(result["training_wall_s"], 1e-9), 3)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    if args.restore:
        subprocess.run(["git", "checkout", "--", "params.yaml", "dvc.lock", "reports"], cwd=ROOT, check=True)
        subprocess.run(["dvc", "checkout", "--quiet", "dvc.yaml"], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
