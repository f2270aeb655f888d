"""Stage `eval_lora@<Target>`: one target's adapter (and its full fine-tuning / from-scratch
references, if trained).

On its own scenario: the full fixed test set; on every other scenario: the cross subset
(``eval.cross_n_samples`` per SNR) for the cross-scenario table. Writes per-sample errors to
``data/eval/lora/<Target>/<Scenario>.npz``; `report` joins them with `eval_base`'s.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from chanest.utils import cli
from chanest import config
from chanest.channel import data
from chanest.estimators.checkpoint import load_estimator
from chanest.evaluation.evaluate import cross_mask, evaluate, test_set
from chanest.estimators.lora import merged_path, read_meta
from chanest.utils.params import load_params
from chanest.channel.pdp import check_scenario
from chanest.training.train import resolve_device

PROCESSED, LORA, OUT = Path("data/processed"), Path("models/lora"), Path("data/eval/lora")


def main() -> None:
    if len(sys.argv) != 2:
        raise ValueError("usage: python -m stages.eval_lora <Scenario>")
    target = check_scenario(sys.argv[1])
    params = load_params()
    ofdm, norm, ev = config.ofdm(params), config.normalisation(params), config.eval_params(params)
    device = resolve_device(ev.device)
    models = {"lora": load_estimator(merged_path(LORA / target).parent, device).eval()}
    for reference in ("full_ft", "scratch"):  # trained with lora.full_ft / lora.scratch
        if (LORA / target / reference).is_dir():
            models[reference] = load_estimator(LORA / target / reference, device).eval()
    meta = {"trainable_parameters": read_meta(LORA / target)["trainable_parameters"]}
    for scenario in config.all_scenarios(params):
        test_pdps = data.sampler(PROCESSED, [scenario], "test", ofdm, norm, device)
        batch = test_set(test_pdps, ev.snr_db, ev.n_samples, ev.seed)
        own = scenario == target  # the references are compared on their own scenario only
        methods = {name: (lambda b, m=m: m(b.h_ls, b.snr_db))
                   for name, m in models.items() if own or name == "lora"}
        index = None if own else np.flatnonzero(cross_mask(batch.snr_db, ev.cross_n_samples))
        evaluate(scenario, methods, batch, ev.batch_size, index, meta if own else None).save(
            OUT / target / f"{scenario}.npz")


if __name__ == "__main__":
    cli.run(main)
