"""Stage `frontier_report` (frontier/dvc.yaml): the frontier table, its metrics and figures.

Joins `eval_base`'s parts (base zero-shot, genie bound) with every cell of ``frontier.budgets`` x
``scenarios.targets`` into ``reports/frontier.csv`` (gap to the genie with PDP-bootstrap 95%
intervals, paired differences to full fine-tuning on all target PDPs), ``reports/frontier.json``
(for ``dvc metrics``), ``reports/frontier/<Target>.csv`` (for ``dvc plots``) and the figures
``reports/figures/frontier/{gap_vs_pdps,gap_vs_weights,gain_vs_pdps}.png``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from chanest.utils import cli
from chanest import config
from chanest.evaluation import plots
from chanest.evaluation.report import TestErrors
from chanest.studies.frontier import frontier_params, cell_path
from chanest.studies.frontier_table import summary, table, wide
from chanest.utils.io import write_csv, write_json
from chanest.utils.params import load_params

EVAL, CELLS, REPORTS = Path("data/eval/base"), Path("data/frontier"), Path("reports")


def main() -> None:
    params = load_params()
    fp = frontier_params(params)
    ev = config.eval_params(params)
    _, targets = config.scenarios(params)
    parts = []
    for t in targets:
        cells = {b: TestErrors.load(cell_path(CELLS, t, b)) for b in fp.budgets}
        parts.append(table(TestErrors.load(EVAL / f"{t}.npz"), cells, ev.n_boot, ev.seed))
    df = pd.concat(parts, ignore_index=True)
    write_csv(df, REPORTS / "frontier.csv")
    for t in targets:
        write_csv(wide(df, t), REPORTS / "frontier" / f"{t}.csv")
    write_json(REPORTS / "frontier.json", summary(df))
    figures = REPORTS / "figures" / "frontier"
    plots.frontier_vs_pdps(df, figures / "gap_vs_pdps.png")
    plots.frontier_vs_weights(df, figures / "gap_vs_weights.png")
    plots.frontier_gain(df, figures / "gain_vs_pdps.png")


if __name__ == "__main__":
    cli.run(main)
