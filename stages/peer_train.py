"""Stage `peer_train@<peer>`: a registered peer (:mod:`chanest.peers`) trained like the base.

The same source scenarios, samplers, validation sets and optimisation (the ``base`` params section:
steps, batch, learning rate and its schedule) as `train_base`; the model differs, and so may the
loss (``peers.<peer>.loss``: the objective of the peer's own paper).
Writes ``models/peers/<peer>/base/`` (``model.safetensors`` + ``config.json``) and
``reports/peers/train_<peer>.json``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import torch

from chanest import config
from chanest.channel import data
from chanest.estimators.checkpoint import save_estimator
from chanest.estimators.model import n_parameters
from chanest.peers import build_peer, peer_loss
from chanest.training import distributed
from chanest.training.train import make_val_sets, train
from chanest.errors import InputError
from chanest.utils import cli
from chanest.utils.io import write_json
from chanest.utils.params import load_params
from chanest.training.train import train_config

PROCESSED, OUT, REPORTS = Path("data/processed/sources"), Path("models/peers"), Path("reports/peers")
log = logging.getLogger("stages.peer_train")


def main() -> None:
    if len(sys.argv) != 2:
        raise InputError("usage: python -m stages.peer_train <peer>")
    name = sys.argv[1]
    params = load_params()
    seed, ofdm, norm = config.seed(params), config.ofdm(params), config.normalisation(params)
    sources, _ = config.scenarios(params)
    cfg = train_config(params, "base")
    cfg = dataclasses.replace(cfg, loss=peer_loss(name, params, cfg.loss))
    torch.manual_seed(seed)
    model = build_peer(name, params, ofdm)
    with distributed.processes(cfg.nproc, cfg.device, "stages.peer_train", [name], key="base.nproc") as device:
        model = model.to(device)
        log.info("%s: %d parameters, device %s", name, n_parameters(model), device)
        sampler = data.sampler(PROCESSED, sources, "train", ofdm, norm, device)
        val_sets = (make_val_sets(data.samplers(PROCESSED, sources, "val", ofdm, norm, device), cfg, seed + 1)
                    if distributed.is_main() else {})
        result = train(model, sampler, val_sets, cfg, seed, name=f"peer_train@{name}")
        if not distributed.is_main():
            return
        save_estimator(OUT / name / "base", model.cpu())
        write_json(REPORTS / f"train_{name}.json", {"loss": cfg.loss, **result.summary(n_parameters(model))})


if __name__ == "__main__":
    cli.run(main)
