"""Stage `train_base`: train the v4 estimator on the source scenarios; save it strictly loadable.

With ``base.nproc: N > 1`` it re-runs itself under ``torchrun`` with N processes (DDP, see
:mod:`chanest.training.distributed`); rank 0 alone validates, checkpoints and writes the outputs.
Training metrics go to ``reports/live/train_base/`` through dvclive (see :mod:`chanest.training.live`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from chanest.utils import cli
from chanest import config
from chanest.channel import data
from chanest.training import distributed
from chanest.estimators.checkpoint import save_estimator
from chanest.utils.io import file_sha256, write_json
from chanest.training.live import LIVE, TrainingLog
from chanest.estimators.model import ChannelEstimator, n_parameters
from chanest.utils.params import load_params
from chanest.training.train import code_fingerprint, fingerprint, make_val_sets, train
from chanest.estimators.model import estimator_config
from chanest.training.train import train_config

PROCESSED, OUT, STATE = Path("data/processed/sources"), Path("models/base"), Path("models/base_state.pt")
REPORT = Path("reports/train_base.json")
log = logging.getLogger("stages.train_base")


def main() -> None:
    params = load_params()
    seed, ofdm, norm = config.seed(params), config.ofdm(params), config.normalisation(params)
    sources, _ = config.scenarios(params)
    cfg = train_config(params, "base")
    with distributed.processes(cfg.nproc, cfg.device, "stages.train_base", key="base.nproc") as device:
        run(params, seed, ofdm, norm, sources, cfg, device)


def run(params, seed, ofdm, norm, sources, cfg, device) -> None:
    """Train on this rank's device; rank 0 writes the outputs."""
    torch.manual_seed(seed)
    model = ChannelEstimator(estimator_config(params, ofdm)).to(device)
    log.info("estimator: %d parameters, device %s, %d process(es)", n_parameters(model), device,
             distributed.world_size())

    sampler = data.sampler(PROCESSED, sources, "train", ofdm, norm, device)
    val_sets = (make_val_sets(data.samplers(PROCESSED, sources, "val", ofdm, norm, device), cfg, seed + 1)
                if distributed.is_main() else {})
    data_hash = [file_sha256(PROCESSED / f"{s}.npz") for s in sources]
    run_id = fingerprint(cfg, model.cfg, ofdm, norm, seed, sources, data_hash, code_fingerprint(__file__))
    live = TrainingLog(LIVE / "train_base") if distributed.is_main() else None
    result = train(model, sampler, val_sets, cfg, seed, STATE, run_id, name="train_base",
                   log_step=live.logger() if live else None)
    if not distributed.is_main():
        return

    save_estimator(OUT, model.cpu())
    live.finish(result)
    write_json(REPORT, result.summary(n_parameters(model)))


if __name__ == "__main__":
    cli.run(main)
