"""Stage `eval_base`: LS, both LMMSEs, NOMP and the base model on every scenario's fixed test set.

Writes the per-sample errors (``data/eval/base/<Scenario>.npz``) that `report` turns into the
metrics. Nothing here depends on ``lora.*`` or the adapters, so DVC keeps it cached while they change.
"""

from __future__ import annotations

from pathlib import Path

from chanest.utils import cli
from chanest import config
from chanest.channel import data
from chanest.estimators.baselines import StatLMMSE
from chanest.estimators.checkpoint import load_estimator
from chanest.estimators.nomp import NOMP
from chanest.evaluation.evaluate import baselines, evaluate, test_set
from chanest.utils.params import load_params
from chanest.channel.preprocess import load_processed
from chanest.training.train import resolve_device

PROCESSED, BASE, OUT = Path("data/processed"), Path("models/base"), Path("data/eval/base")


def main() -> None:
    params = load_params()
    ofdm, norm, ev = config.ofdm(params), config.normalisation(params), config.eval_params(params)
    device = resolve_device(ev.device)
    base = load_estimator(BASE, device).eval()
    nomp = NOMP(ofdm, config.nomp(params))
    for scenario in config.all_scenarios(params):
        test_pdps = data.sampler(PROCESSED, [scenario], "test", ofdm, norm, device)
        batch = test_set(test_pdps, ev.snr_db, ev.n_samples, ev.seed)
        stat = StatLMMSE.from_pdps(load_processed(PROCESSED, scenario, "train"), ofdm, device=device)
        methods = baselines(ofdm, stat, nomp) | {"base": lambda b: base(b.h_ls, b.snr_db)}
        evaluate(scenario, methods, batch, ev.batch_size).save(OUT / f"{scenario}.npz")


if __name__ == "__main__":
    cli.run(main)
