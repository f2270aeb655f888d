"""Stage `cross`: every target's adapter on every other scenario (the cross-scenario table).

Each adapter runs on the cross subset (the first ``eval.cross_n_samples`` per SNR) of each other
scenario's fixed test set; writes ``data/eval/cross/<Target>/<Scenario>.npz``. It reads every
adapter and every scenario's test PDPs, so it is the one evaluation stage that re-runs whenever a
target is added, removed or changed (about 3 s per adapter on the CPU profile).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chanest import config
from chanest.channel import data
from chanest.estimators.checkpoint import load_estimator
from chanest.estimators.lora import merged_path
from chanest.evaluation.evaluate import cross_mask, evaluate, test_set
from chanest.training.train import resolve_device
from chanest.utils import cli
from chanest.utils.params import load_params

PROCESSED, LORA, OUT = Path("data/processed"), Path("models/lora"), Path("data/eval/cross")


def main() -> None:
    params = load_params()
    ofdm, norm, ev = config.ofdm(params), config.normalisation(params), config.eval_params(params)
    sources, targets = config.scenarios(params)
    device = resolve_device(ev.device)
    groups = {s: "sources" for s in sources} | {t: "targets" for t in targets}
    models = {t: load_estimator(merged_path(LORA / t).parent, device).eval() for t in targets}
    for scenario, group in groups.items():
        batch = test_set(data.sampler(PROCESSED / group, [scenario], "test", ofdm, norm, device), ev.snr_db,
                         ev.n_samples, ev.seed)
        index = np.flatnonzero(cross_mask(batch.snr_db, ev.cross_n_samples))
        for target, model in models.items():
            if target != scenario:
                evaluate(scenario, {"lora": lambda b, m=model: m(b.h_ls, b.snr_db)}, batch, ev.batch_size,
                         index).save(OUT / target / f"{scenario}.npz")


if __name__ == "__main__":
    cli.run(main)
