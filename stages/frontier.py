"""Stage `frontier@<Target>-<budget>` (frontier/dvc.yaml): one cell of the adaptation frontier.

Trains LoRA at every rank of ``frontier.ranks``, full fine-tuning and the from-scratch reference on
the first ``<budget>`` target train PDPs (nested subsets, :mod:`chanest.training.adapt`) and writes their
per-sample errors on the target's fixed test set to ``data/frontier/<Target>/<budget>.npz``.
The budget comes from the stage name, not from params, so a changed ``frontier.budgets`` list
re-runs only the cells it adds.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chanest.training import adapt
from chanest.errors import InputError
from chanest.utils import cli
from chanest import config
from chanest.studies.frontier import Cell, frontier_params, cell_path, run_cell
from chanest.utils.params import load_params
from chanest.channel.pdp import check_scenario

OUT = Path("data/frontier")


def main() -> None:
    if len(sys.argv) != 3:
        raise InputError("usage: python -m stages.frontier <Target> <budget: PDPs | all>")
    target = check_scenario(sys.argv[1])
    budget = adapt.check_budget(sys.argv[2] if sys.argv[2] == "all" else int(sys.argv[2]), "budget")
    params = load_params()
    fp = frontier_params(params)
    lp, cfg = adapt.settings(params)
    ev = config.eval_params(params)
    cell = Cell(target, budget, config.seed(params), config.ofdm(params), config.normalisation(params),
                lp, cfg, ev.snr_db, ev.n_samples, ev.seed, ev.batch_size, ev.device)
    run_cell(cell, fp.ranks, fp.workers).save(cell_path(OUT, target, budget))


if __name__ == "__main__":
    cli.run(main)
