"""Stage `grid_link_report` (research-link/dvc.yaml): BLER tables, the 10% BLER SNRs, the figures.

Writes ``reports/link/bler_vs_snr.csv`` (every SNR point of every curve), ``reports/link/link.json``
(per target, method and MCS: the SNR at 10% BLER with its PDP-bootstrap interval, the paired
differences against perfect CSI and against LS + linear, the BLER floor where a curve has no
crossing; and the error-variance calibration check) and ``reports/link/figures/bler_<Target>.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from chanest.evaluation import plots
from chanest.receiver.grid_link import grid_link_params
from chanest.receiver.report import summarise
from chanest.studies.link_report import KEY, points
from chanest.studies.link_run import load
from chanest.utils import cli
from chanest.utils.io import write_csv, write_json
from chanest.utils.params import load_params

DATA, REPORTS = Path("data/link"), Path("reports/link")


def main() -> None:
    params = load_params()
    lp = grid_link_params(params)
    rows, summary = [], {}
    for t in lp.targets:
        records = load(DATA / f"{t}.npz")
        rows.append(points(t, records))
        summary[t] = summarise(t, records, lp.n_boot, lp.seed)
        summary[t]["calibration"] = json.loads((DATA / f"{t}_calibration.json").read_text())
    df = pd.concat(rows, ignore_index=True)
    write_csv(df, REPORTS / "bler_vs_snr.csv")
    write_json(REPORTS / "link.json", summary)
    for t in lp.targets:
        crossings = {m: {mcs: e for mcs, e in per.items() if e[KEY] is not None}  # (floors: no crossing)
                     for m, per in summary[t].items() if m != "calibration"}
        plots.bler_vs_snr(df[df.scenario == t], crossings, REPORTS / "figures" / f"bler_{t}.png")


if __name__ == "__main__":
    cli.run(main)
