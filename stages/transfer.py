"""Stage `transfer@<Scenario>`: LoRA-adapt the base to one target scenario (peft).

With ``lora.nproc: N > 1`` it re-runs itself under ``torchrun`` with N processes (DDP around the
peft model, see :mod:`chanest.distributed`); rank 0 alone validates and writes the outputs.
Training metrics go to ``reports/live/transfer_<Scenario>/`` through dvclive (see :mod:`chanest.live`),
those of the full fine-tuning reference (``lora.full_ft``) under the prefix ``full_ft/``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

from chanest import cli, config, data, distributed, lora
from chanest.checkpoint import load_estimator
from chanest.io import write_json
from chanest.live import LIVE, TrainingLog
from chanest.model import n_parameters
from chanest.params import from_section, get, load_params
from chanest.pdp import check_scenario
from chanest.train import make_val_sets, train

PROCESSED, BASE, OUT = Path("data/processed"), Path("models/base"), Path("models/lora")
log = logging.getLogger("stages.transfer")


def main() -> None:
    if len(sys.argv) != 2:
        raise ValueError("usage: python -m stages.transfer <Scenario>")
    scenario = check_scenario(sys.argv[1])
    params = load_params()
    seed, ofdm, norm = config.seed(params), config.ofdm(params), config.normalisation(params)
    adapter_keys = {f.name for f in dataclasses.fields(lora.LoraParams)}
    section = get(params, "lora")
    lp = from_section(lora.LoraParams, {k: v for k, v in section.items() if k in adapter_keys}, "lora")
    cfg = config.train(params, "lora", exclude=tuple(adapter_keys))
    with distributed.processes(cfg.nproc, cfg.device, "stages.transfer", [scenario], key="lora.nproc") as device:
        run(scenario, seed, ofdm, norm, lp, cfg, device)


def run(scenario, seed, ofdm, norm, lp, cfg, device) -> None:
    """Adapt on this rank's device; rank 0 writes the outputs."""
    main = distributed.is_main()
    sampler = data.sampler(PROCESSED, [scenario], "train", ofdm, norm, device)
    val_sets = (make_val_sets(data.samplers(PROCESSED, [scenario], "val", ofdm, norm, device), cfg, seed + 2)
                if main else {})
    base = load_estimator(BASE, device)
    base_params, base_hash = n_parameters(base), lora.state_hash(base)
    model = lora.wrap(base, lp, seed)
    trainable = n_parameters(model, trainable_only=True)
    log.info("%s: %d trainable of %d base parameters (%.2f%%)", scenario, trainable, base_params,
             100 * trainable / base_params)
    live = TrainingLog(LIVE / f"transfer_{scenario}") if main else None
    result = train(model, sampler, val_sets, cfg, seed, name=f"transfer@{scenario}",
                   log_step=live.logger() if live else None)
    full = ft = None
    if lp.full_ft:
        full = load_estimator(BASE, device)
        ft = train(full, sampler, val_sets, dataclasses.replace(cfg, lr=lp.full_ft_lr), seed,
                   name=f"full_ft@{scenario}", log_step=live.logger("full_ft/") if live else None)
    if not main:
        return
    report = {
        "scenario": scenario,
        "trainable_parameters": trainable,
        "base_parameters": base_params,
        "trainable_share": round(trainable / base_params, 5),
        "val_nmse_db_base": round(result.initial_val_db[scenario], 3),
        "val_nmse_db_lora": round(result.best_val_db[scenario], 3),
        "val_gain_db": round(result.initial_val_db[scenario] - result.best_val_db[scenario], 3),
        "steps": result.steps,
        "best_step": result.best_step,
        "wall_s": round(result.wall_s, 1),
    }
    live.finish(result)
    extra = {}
    if ft is not None:
        extra["full_ft"] = full.cpu()
        report["full_ft"] = {
            "trainable_parameters": n_parameters(full, trainable_only=True),
            "val_nmse_db": round(ft.best_val_db[scenario], 3),
            "wall_s": round(ft.wall_s, 1),
        }
        live.finish(ft, "full_ft/")
    lora.save_adapter(OUT / scenario, model.cpu(), base_hash,
                      {"scenario": scenario, "trainable_parameters": trainable}, extra)
    write_json(Path("reports/transfer") / f"{scenario}.json", report)


if __name__ == "__main__":
    cli.run(main)
