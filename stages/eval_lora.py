"""Stage `eval_lora`: every target's adapter on its own test set and on the other scenarios.

Writes, per target ``T``:

- ``data/eval/lora/T.npz``: the adapter (and its full fine-tuning / from-scratch references, if
  trained) on T's full fixed test set;
- ``data/eval/cross/T/<Scenario>.npz``: the adapter on the cross subset (the first
  ``eval.cross_n_samples`` per SNR) of every other scenario's fixed test set (the cross table).

`report` joins them with `eval_base`'s. One process evaluates every adapter: on the CPU profile an
adapter's own test set takes about 3 s, no more than starting a stage process and handing its
output to DVC, and the cross table needs every adapter anyway.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chanest import config
from chanest.channel import data
from chanest.estimators.lora import load_adapted, read_meta
from chanest.evaluation.evaluate import cross_mask, evaluate, learned, test_set
from chanest.training.train import resolve_device
from chanest.utils import cli
from chanest.utils.params import load_params

PROCESSED, LORA, OUT = Path("data/processed"), Path("models/lora"), Path("data/eval")


def main() -> None:
    params = load_params()
    ofdm, norm, ev = config.ofdm(params), config.normalisation(params), config.eval_params(params)
    sources, targets = config.scenarios(params)
    device = resolve_device(ev.device)
    groups = {s: "sources" for s in sources} | {t: "targets" for t in targets}
    adapted = {t: load_adapted(LORA / t, device) for t in targets}  # lora, then its references
    for scenario, group in groups.items():
        batch = test_set(data.sampler(PROCESSED / group, [scenario], "test", ofdm, norm, device), ev.snr_db,
                         ev.n_samples, ev.seed)
        if scenario in adapted:  # the adapter (and its references) on its own full test set
            meta = {"trainable_parameters": read_meta(LORA / scenario)["trainable_parameters"]}
            evaluate(scenario, learned(adapted[scenario]), batch, ev.batch_size, meta=meta).save(
                OUT / "lora" / f"{scenario}.npz")
        index = np.flatnonzero(cross_mask(batch.snr_db, ev.cross_n_samples))
        for target, models in adapted.items():
            if target != scenario:
                evaluate(scenario, learned({"lora": models["lora"]}), batch, ev.batch_size, index).save(
                    OUT / "cross" / target / f"{scenario}.npz")


if __name__ == "__main__":
    cli.run(main)
