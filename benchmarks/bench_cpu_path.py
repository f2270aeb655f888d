"""What the pinned CPU path costs: training throughput pinned (AVX2) vs native, as a ratio.

    python benchmarks/bench_cpu_path.py [--profile cpu] [--rounds 3] [--steps 20] [--json]

Runs ``benchmarks/bench_train.py`` in fresh processes (the path is fixed when torch loads),
alternating ``CHANEST_CPU_PATH=avx2`` (the default: :mod:`chanest.utils.cpu`) and ``native``,
``--rounds`` times each, and reports the median samples/s of each and ``native / pinned``: the
slow-down the pin costs on this machine (1.0 on a machine whose native path is AVX2 anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rate(path: str, profile: str, steps: int) -> float:
    env = {**os.environ, "CHANEST_CPU_PATH": path}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--profile", profile,
                          "--steps", str(steps), "--json"], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["samples_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs: dict[str, list[float]] = {"avx2": [], "native": []}
    for _ in range(args.rounds):
        for path in runs:
            runs[path].append(rate(path, args.profile, args.steps))
    med = {k: statistics.median(v) for k, v in runs.items()}
    result = {"profile": args.profile, "cpu": platform.processor() or platform.machine(),
              "samples_per_s": {k: [round(x, 1) for x in v] for k, v in runs.items()},
              "median": {k: round(v, 1) for k, v in med.items()},
              "native_over_pinned": round(med["native"] / med["avx2"], 3)}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
