"""Stage `eval_lora@<Target>`: one target's adapter (and its full fine-tuning / from-scratch
references, if trained) on the target's full fixed test set.

Writes per-sample errors to ``data/eval/lora/<Target>.npz``; `report` joins them with
`eval_base`'s. The adapter on the other scenarios (the cross table) is the `cross` stage's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chanest import config
from chanest.channel import data
from chanest.channel.pdp import check_scenario
from chanest.estimators.checkpoint import load_estimator
from chanest.estimators.lora import merged_path, read_meta
from chanest.evaluation.evaluate import evaluate, test_set
from chanest.training.train import resolve_device
from chanest.utils import cli
from chanest.utils.params import load_params

PROCESSED, LORA, OUT = Path("data/processed/targets"), Path("models/lora"), Path("data/eval/lora")


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
    batch = test_set(data.sampler(PROCESSED, [target], "test", ofdm, norm, device), ev.snr_db, ev.n_samples,
                     ev.seed)
    methods = {name: (lambda b, m=m: m(b.h_ls, b.snr_db)) for name, m in models.items()}
    evaluate(target, methods, batch, ev.batch_size, meta=meta).save(OUT / f"{target}.npz")


if __name__ == "__main__":
    cli.run(main)
