"""Stage `link_report` (link/dvc.yaml): BLER tables, the 10% BLER SNRs and the BLER figures.

Writes ``reports/bler_vs_snr.csv`` (every SNR point of every curve), ``reports/link.json`` (per
target, method and MCS: the SNR at 10% BLER, its PDP-bootstrap interval, the paired loss against
perfect CSI; for ``dvc metrics``) and ``reports/figures/link/bler_<Target>.png``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from chanest.utils import cli
from chanest import config
from chanest.evaluation import plots
from chanest.utils.io import write_csv, write_json
from chanest.studies.link import link_params
from chanest.studies.link_run import load
from chanest.studies.link_report import crossings, points
from chanest.utils.params import load_params

DATA, REPORTS = Path("data/link"), Path("reports")


def main() -> None:
    params = load_params()
    lp = link_params(params)
    _, targets = config.scenarios(params)
    rows, summary = [], {}
    for t in targets:
        records = load(DATA / f"{t}.npz")
        rows.append(points(t, records))
        summary[t] = crossings(t, records, lp.n_boot, lp.seed)
    df = pd.concat(rows, ignore_index=True)
    write_csv(df, REPORTS / "bler_vs_snr.csv")
    write_json(REPORTS / "link.json", summary)
    for t in targets:
        plots.bler_vs_snr(df[df.scenario == t], summary[t], REPORTS / "figures" / "link" / f"bler_{t}.png")


if __name__ == "__main__":
    cli.run(main)
