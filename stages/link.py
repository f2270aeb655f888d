"""Stage `link@<Target>` (link/dvc.yaml): BLER curves of every estimator in Sionna's 5G NR PUSCH.

For each MCS of ``link.mcs_index`` and each method of ``link.methods``, blocks are decoded around
the curve's 10% BLER crossing (:mod:`chanest.studies.link`) over channels synthesised from the target's
test PDPs; every block is written to ``data/link/<Target>.npz`` for `link_report`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chanest.errors import InputError
from chanest.utils import cli
from chanest import config
from chanest.studies.link import link_params
from chanest.studies.link_run import LinkTask, run_target, save
from chanest.utils.params import load_params
from chanest.channel.pdp import check_scenario

OUT = Path("data/link")


def main() -> None:
    if len(sys.argv) != 2:
        raise InputError("usage: python -m stages.link <Target>")
    target = check_scenario(sys.argv[1])
    params = load_params()
    lp = link_params(params)
    task = LinkTask(target, config.ofdm(params), config.normalisation(params), lp)
    save(OUT / f"{target}.npz", run_target(task))


if __name__ == "__main__":
    cli.run(main)
