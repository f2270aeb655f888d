"""Stage `peer_eval@<peer>`: a peer's base on every scenario's fixed test set, and its adapters
on their own targets' (the same samples as the default pipeline's evaluation parts).

Writes ``data/peers/eval/<peer>/<Scenario>.npz`` with the methods ``<peer>`` and, on a target,
``<peer>_lora``; `peers_report` joins them with chanest's parts.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chanest import config
from chanest.channel import data
from chanest.evaluation.evaluate import evaluate, learned, test_set
from chanest.peers import load_peer
from chanest.training.train import resolve_device
from chanest.errors import InputError
from chanest.utils import cli
from chanest.utils.params import load_params

PROCESSED, MODELS, OUT = Path("data/processed"), Path("models/peers"), Path("data/peers/eval")


def main() -> None:
    if len(sys.argv) != 2:
        raise InputError("usage: python -m stages.peer_eval <peer>")
    name = sys.argv[1]
    params = load_params()
    ofdm, norm, ev = config.ofdm(params), config.normalisation(params), config.eval_params(params)
    sources, targets = config.scenarios(params)
    device = resolve_device(ev.device)
    models = {name: load_peer(name, MODELS / name / "base", device).eval()}
    for scenario, group in [(s, "sources") for s in sources] + [(t, "targets") for t in targets]:
        batch = test_set(data.sampler(PROCESSED / group, [scenario], "test", ofdm, norm, device), ev.snr_db,
                         ev.n_samples, ev.seed)
        here = dict(models)
        if group == "targets":
            here[f"{name}_lora"] = load_peer(name, MODELS / name / "lora" / scenario / "merged", device).eval()
        evaluate(scenario, learned(here), batch, ev.batch_size).save(OUT / name / f"{scenario}.npz")


if __name__ == "__main__":
    cli.run(main)
