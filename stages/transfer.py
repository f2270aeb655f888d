"""Stage `transfer@<Scenario>`: LoRA-adapt the base to one target scenario (peft).

With ``lora.nproc: N > 1`` it re-runs itself under ``torchrun`` with N processes (DDP around the
peft model, see :mod:`chanest.training.distributed`); rank 0 alone validates and writes the outputs.
Training metrics go to ``reports/live/transfer_<Scenario>/`` through dvclive (see :mod:`chanest.training.live`),
those of the full fine-tuning and from-scratch references (``lora.full_ft``, ``lora.scratch``) under
the prefixes ``full_ft/`` and ``scratch/``. Every method sees the same ``lora.target_pdps`` train
PDPs of the target (see :mod:`chanest.training.adapt`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from chanest.training import adapt, distributed
from chanest.errors import InputError
from chanest.utils import cli
from chanest import config
from chanest.channel import data
from chanest.estimators import lora
from chanest.estimators.checkpoint import load_estimator
from chanest.utils.io import write_json
from chanest.training.live import LIVE, TrainingLog
from chanest.estimators.model import n_parameters
from chanest.utils.params import load_params
from chanest.channel.pdp import check_scenario
from chanest.training.train import make_val_sets

PROCESSED, BASE, OUT = Path("data/processed/targets"), Path("models/base"), Path("models/lora")
log = logging.getLogger("stages.transfer")


def main() -> None:
    if len(sys.argv) != 2:
        raise InputError("usage: python -m stages.transfer <Scenario>")
    scenario = check_scenario(sys.argv[1])
    params = load_params()
    seed, ofdm, norm = config.seed(params), config.ofdm(params), config.normalisation(params)
    lp, cfg = adapt.settings(params)
    with distributed.processes(cfg.nproc, cfg.device, "stages.transfer", [scenario], key="lora.nproc") as device:
        run(scenario, seed, ofdm, norm, lp, cfg, device)


def run(scenario, seed, ofdm, norm, lp, cfg, device) -> None:
    """Adapt on this rank's device; rank 0 writes the outputs."""
    main = distributed.is_main()
    sampler = adapt.target_sampler(PROCESSED, scenario, lp.target_pdps, seed, ofdm, norm, device)
    val_sets = (make_val_sets(data.samplers(PROCESSED, [scenario], "val", ofdm, norm, device), cfg, seed + 2)
                if main else {})
    base = load_estimator(BASE, device)
    base_params, base_hash = n_parameters(base), lora.state_hash(base)
    live = TrainingLog(LIVE / f"transfer_{scenario}") if main else None
    runs = {}
    for method in ("lora", "full_ft", "scratch"):
        if method == "lora" or getattr(lp, method):
            prefix = "" if method == "lora" else f"{method}/"
            runs[method] = adapt.adapt(method, BASE, sampler, val_sets, cfg, lp, seed, device,
                                       name=f"{method}@{scenario}",
                                       log_step=live.logger(prefix) if live else None)
    if not main:
        return
    model, result, trainable = runs["lora"].model, runs["lora"].result, runs["lora"].trainable_parameters
    log.info("%s: %d trainable of %d base parameters (%.2f%%), %d train PDPs", scenario, trainable,
             base_params, 100 * trainable / base_params, len(sampler))
    report = {
        "scenario": scenario,
        "trainable_parameters": trainable,
        "base_parameters": base_params,
        "trainable_share": round(trainable / base_params, 5),
        "target_pdps": len(sampler),
        "val_nmse_db_base": round(result.initial_val_db[scenario], 3),
        "val_nmse_db_lora": round(result.best_val_db[scenario], 3),
        "val_gain_db": round(result.initial_val_db[scenario] - result.best_val_db[scenario], 3),
        "steps": result.steps,
        "best_step": result.best_step,
        "wall_s": round(result.wall_s, 1),
    }
    live.finish(result)
    extra = {}
    for method, run_ in runs.items():
        if method == "lora":
            continue
        extra[method] = run_.model.cpu()
        report[method] = {
            "trainable_parameters": run_.trainable_parameters,
            "val_nmse_db": round(run_.result.best_val_db[scenario], 3),
            "wall_s": round(run_.result.wall_s, 1),
        }
        live.finish(run_.result, f"{method}/")
    lora.save_adapter(OUT / scenario, model.cpu(), base_hash,
                      {"scenario": scenario, "trainable_parameters": trainable}, extra)
    write_json(Path("reports/transfer") / f"{scenario}.json", report)


if __name__ == "__main__":
    cli.run(main)
