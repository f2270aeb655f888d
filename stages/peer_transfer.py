"""Stage `peer_transfer@<peer>-<Target>`: a LoRA adapter for a peer, trained like chanest's.

The ``lora`` params section (rank, alpha, steps, learning rate, the target-PDP budget) on the
peer's own adaptable modules (its registration's ``lora_targets``; rank-pattern entries of other
modules are dropped), with the peer's own loss as in `peer_train`. Writes ``models/peers/<peer>/lora/<Target>/`` (peft ``save_pretrained`` plus
the merged weights) and ``reports/peers/transfer_<peer>_<Target>.json``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

from chanest import config
from chanest.channel import data
from chanest.channel.pdp import check_scenario
from chanest.estimators import lora
from chanest.estimators.model import n_parameters
from chanest.peers import get_peer, load_peer, peer_loss
from chanest.training import adapt
from chanest.training.train import make_val_sets, resolve_device, train
from chanest.errors import InputError
from chanest.utils import cli
from chanest.utils.io import write_json
from chanest.utils.params import load_params

PROCESSED, MODELS, REPORTS = Path("data/processed/targets"), Path("models/peers"), Path("reports/peers")
log = logging.getLogger("stages.peer_transfer")


def main() -> None:
    if len(sys.argv) != 3:
        raise InputError("usage: python -m stages.peer_transfer <peer> <Scenario>")
    name, target = sys.argv[1], check_scenario(sys.argv[2])
    peer = get_peer(name)
    params = load_params()
    seed, ofdm, norm = config.seed(params), config.ofdm(params), config.normalisation(params)
    lp, cfg = adapt.settings(params)
    lp = dataclasses.replace(lp, target_modules=peer.lora_targets,
                             rank_pattern={k: v for k, v in lp.rank_pattern.items() if k in peer.lora_targets})
    cfg = dataclasses.replace(cfg, loss=peer_loss(name, params, cfg.loss))
    device = resolve_device(cfg.device)
    sampler = adapt.target_sampler(PROCESSED, target, lp.target_pdps, seed, ofdm, norm, device)
    val_sets = make_val_sets(data.samplers(PROCESSED, [target], "val", ofdm, norm, device), cfg, seed + 2)
    base = load_peer(name, MODELS / name / "base", device)
    base_params, base_hash = n_parameters(base), lora.state_hash(base)
    model = lora.wrap(base, lp, seed)
    trainable = n_parameters(model, trainable_only=True)
    result = train(model, sampler, val_sets, cfg, seed, name=f"{name} lora@{target}")
    log.info("%s on %s: %d trainable of %d base parameters (%.2f%%)", name, target, trainable, base_params,
             100 * trainable / base_params)
    lora.save_adapter(MODELS / name / "lora" / target, model.cpu(), base_hash,
                      {"scenario": target, "peer": name, "trainable_parameters": trainable})
    write_json(REPORTS / f"transfer_{name}_{target}.json", {
        "peer": name,
        "scenario": target,
        "trainable_parameters": trainable,
        "base_parameters": base_params,
        "val_nmse_db_base": round(result.initial_val_db[target], 3),
        "val_nmse_db_lora": round(result.best_val_db[target], 3),
        "val_gain_db": round(result.initial_val_db[target] - result.best_val_db[target], 3),
        "best_step": result.best_step,
        "wall_s": round(result.wall_s, 1),
    })


if __name__ == "__main__":
    cli.run(main)
