"""Stage `plot`: PNG figures from the evaluation and the training curves."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from chanest import cli, config, plots
from chanest.params import load_params

REPORTS, OUT = Path("reports"), Path("reports/figures/eval")


def main() -> None:
    params = load_params()
    _, targets = config.scenarios(params)
    df = pd.read_csv(REPORTS / "nmse_vs_snr.csv")
    for scenario in config.all_scenarios(params):
        plots.nmse_vs_snr(df, scenario, OUT / f"nmse_{scenario}.png")
    metrics = json.loads((REPORTS / "metrics.json").read_text())
    if targets:
        plots.lora_gain(metrics, targets, OUT / "lora_gain.png")
    plots.cross_scenario(pd.read_csv(REPORTS / "cross_scenario.csv"), OUT / "cross_scenario.png")
    curves = {"base": pd.read_csv(REPORTS / "curves" / "train_base.csv")}
    for t in targets:
        c = pd.read_csv(REPORTS / "curves" / f"transfer_{t}.csv")
        for run, g in c.groupby("run", sort=False):
            curves[f"{run} {t}"] = g
    plots.training_curves(curves, OUT / "training_curves.png")


if __name__ == "__main__":
    cli.run(main)
