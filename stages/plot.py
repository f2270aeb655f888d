"""Stage `plot`: PNG figures from the evaluation, the training curves and the PDPs' delay spreads,
and the training curves as one table (``reports/training_curves.csv``, drawn by ``dvc plots``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from chanest.utils import cli
from chanest import config
from chanest.channel.preprocess import load_processed
from chanest.evaluation import plots
from chanest.utils.io import write_csv
from chanest.utils.params import load_params

REPORTS, OUT, PROCESSED = Path("reports"), Path("reports/figures/eval"), Path("data/processed")


def main() -> None:
    params = load_params()
    sources, targets = config.scenarios(params)
    df = pd.read_csv(REPORTS / "nmse_vs_snr.csv")
    for scenario in config.all_scenarios(params):
        plots.nmse_vs_snr(df, scenario, OUT / f"nmse_{scenario}.png")
    metrics = json.loads((REPORTS / "metrics.json").read_text())
    if targets:
        plots.lora_gain(metrics, targets, OUT / "lora_gain.png")
    plots.cross_scenario(pd.read_csv(REPORTS / "cross_scenario.csv"), OUT / "cross_scenario.png")
    spreads = {s: load_processed(PROCESSED / group, s).rms_delay_spread_s() * 1e9
               for group, names in (("sources", sources), ("targets", targets)) for s in names}
    plots.delay_spread_cdf(spreads, OUT / "delay_spread_cdf.png")
    live = REPORTS / "live"  # dvclive's per-step logs (chanest.training.live)
    curves = {"base": plots.read_live_metric(live / "train_base")}
    for t in targets:
        curves[f"lora {t}"] = plots.read_live_metric(live / f"transfer_{t}")
        for reference in ("full_ft", "scratch"):
            if plots.live_metric_path(live / f"transfer_{t}", f"{reference}/val_nmse_db").is_file():
                curves[f"{reference} {t}"] = plots.read_live_metric(live / f"transfer_{t}",
                                                                    f"{reference}/val_nmse_db")
    plots.training_curves(curves, OUT / "training_curves.png")
    write_csv(plots.curve_table(live, sources, targets), REPORTS / "training_curves.csv")


if __name__ == "__main__":
    cli.run(main)
