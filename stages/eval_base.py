"""Stage `eval_base_sources@<Scenario>` / `eval_base_targets@<Scenario>`: LS, both LMMSEs, NOMP and
the base model on one scenario's fixed test set.

    python -m stages.eval_base <Scenario> sources|targets

Writes the per-sample errors (``data/eval/base/<Scenario>.npz``) that `report` turns into the
metrics. Nothing here depends on ``lora.*``, the adapters or the other scenarios, so DVC keeps it
cached while they change.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chanest import config
from chanest.channel import data
from chanest.channel.pdp import check_scenario
from chanest.channel.preprocess import GROUPS
from chanest.estimators.checkpoint import load_estimator
from chanest.estimators.nomp import NOMP
from chanest.evaluation.evaluate import evaluate, scenario_methods, test_set
from chanest.training.train import resolve_device
from chanest.errors import InputError
from chanest.utils import cli
from chanest.utils.params import load_params
from chanest.estimators.nomp import nomp_config

PROCESSED, BASE, OUT = Path("data/processed"), Path("models/base"), Path("data/eval/base")


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[2] not in GROUPS:
        raise InputError(f"usage: python -m stages.eval_base <Scenario> {'|'.join(GROUPS)}")
    scenario, processed = check_scenario(sys.argv[1]), PROCESSED / sys.argv[2]
    params = load_params()
    ofdm, norm, ev = config.ofdm(params), config.normalisation(params), config.eval_params(params)
    device = resolve_device(ev.device)
    base = load_estimator(BASE, device).eval()
    batch = test_set(data.sampler(processed, [scenario], "test", ofdm, norm, device), ev.snr_db, ev.n_samples,
                     ev.seed)
    methods = scenario_methods(ofdm, processed, scenario, device, NOMP(ofdm, nomp_config(params)), {"base": base})
    evaluate(scenario, methods, batch, ev.batch_size).save(OUT / f"{scenario}.npz")


if __name__ == "__main__":
    cli.run(main)
