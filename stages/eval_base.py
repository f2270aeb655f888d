"""Stage `eval_base`: LS, both LMMSEs and the base model on every scenario's fixed test set.

Writes the per-sample errors (``data/eval/base/<Scenario>.npz``) that `report` turns into the
metrics. Nothing here depends on ``lora.*`` or the adapters, so DVC keeps it cached while they change.
"""

from __future__ import annotations

from pathlib import Path

from chanest import cli, config, data
from chanest.baselines import StatLMMSE, genie_lmmse, ls_linear
from chanest.checkpoint import load_estimator
from chanest.evaluate import evaluate
from chanest.params import load_params
from chanest.train import resolve_device

PROCESSED, BASE, OUT = Path("data/processed"), Path("models/base"), Path("data/eval/base")


def main() -> None:
    params = load_params()
    ofdm, norm, ev = config.ofdm(params), config.normalisation(params), config.eval_params(params)
    device = resolve_device(ev.device)
    base = load_estimator(BASE, device).eval()
    for scenario in config.all_scenarios(params):
        batch = data.test_set(PROCESSED, scenario, ofdm, norm, ev.snr_db, ev.n_samples, ev.seed, device)
        stat = StatLMMSE.from_pdps(data.sampler(PROCESSED, [scenario], "train", ofdm, norm, device).pdps,
                                   ofdm, device=device)
        methods = {
            "ls": lambda b: ls_linear(b.h_ls, ofdm),
            "lmmse_stat": lambda b: stat(b.h_ls, b.noise_var),
            "lmmse_genie": lambda b: genie_lmmse(b.h_ls, b.delays_s, b.powers, b.noise_var, ofdm),
            "base": lambda b: base(b.h_ls, b.snr_db),
        }
        evaluate(scenario, methods, batch, ev.batch_size).save(OUT / f"{scenario}.npz")


if __name__ == "__main__":
    cli.run(main)
