"""Stage `grid_link@<Target>` (research-link/dvc.yaml): BLER curves at the research's FR2 numerology.

For each MCS of ``link.mcs_index`` and each method of ``link.methods``, blocks are decoded around
the curve's 10% BLER crossing over channels synthesised from the target's test PDPs, on a Sionna
resource grid with the research's pilots (:mod:`chanest.receiver.grid_link`). Writes every block to
``data/link/<Target>.npz`` and the error-variance calibration check (reported against measured
on test channels, per method and SNR) to ``data/link/<Target>_calibration.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from chanest import config
from chanest.channel import data
from chanest.channel.pdp import check_scenario
from chanest.receiver import calibrate
from chanest.receiver.grid_link import (CALIBRATION_SNR_DB, grid_link_params, GridLinkTask, error_variance_check,
                                        estimators, run_target)
from chanest.studies.link_run import save
from chanest.errors import InputError
from chanest.utils import cli
from chanest.utils.io import write_json
from chanest.utils.params import ParamsError, load_params
from chanest.estimators.nomp import nomp_config

OUT = Path("data/link")
CHECK_SNR_DB = (0.0, 10.0, 20.0, 30.0)


def main() -> None:
    if len(sys.argv) != 2:
        raise InputError("usage: python -m stages.grid_link <Target>")
    target = check_scenario(sys.argv[1])
    params = load_params()
    lp = grid_link_params(params)
    if target not in lp.targets:
        raise ParamsError(f"params: link.targets {list(lp.targets)} does not list {target}")
    ofdm, norm = config.ofdm(params), config.normalisation(params)
    task = GridLinkTask(target, ofdm, norm, lp, nomp_config(params))
    save(OUT / f"{target}.npz", run_target(task))
    # the error variance each receiver was told, against what the estimator does on test channels
    torch.set_num_threads(1)
    val = data.sampler(task.processed, [target], "val", ofdm, norm, "cpu")
    test = data.sampler(task.processed, [target], "test", ofdm, norm, "cpu")
    check = {}
    for method, estimate in estimators(task, torch.device("cpu")).items():
        err_var = calibrate(estimate, val, CALIBRATION_SNR_DB, lp.calibration_samples, lp.seed)
        check[method] = error_variance_check(estimate, err_var, test, CHECK_SNR_DB, 4 * lp.calibration_samples,
                                             lp.seed + 1)
    write_json(OUT / f"{target}_calibration.json", check)


if __name__ == "__main__":
    cli.run(main)
