"""Stage `peers_report`: every peer beside chanest's estimator, paired on identical test samples.

Reads the peers' evaluation parts and the default pipeline's (``data/eval/base``,
``data/eval/lora``); writes ``reports/peers/metrics.json`` (per scenario and method: the gap to the
genie, and for a peer how far chanest's estimator is ahead of it, with 95% PDP-bootstrap intervals)
and ``reports/peers/nmse_vs_snr.csv`` (for ``dvc plots``). See :mod:`chanest.peers.report`.
"""

from __future__ import annotations

from pathlib import Path

from chanest import config
from chanest.evaluation.report import TestErrors
from chanest.peers import get_peer
from chanest.peers.report import compare, table
from chanest.utils import cli
from chanest.utils.io import atomic_path, write_json
from chanest.utils.params import ParamsError, get, load_params

EVAL, PEERS, OUT = Path("data/eval"), Path("data/peers/eval"), Path("reports/peers")


def main() -> None:
    params = load_params()
    ev = config.eval_params(params)
    sources, targets = config.scenarios(params)
    names = get(params, "peers.names")
    if not isinstance(names, list) or not names:
        raise ParamsError(f"params: peers.names = {names!r}; expected a list of registered peers")
    for name in names:
        get_peer(name)
    rows, metrics = [], {}
    for scenario in sources + targets:
        reference = TestErrors.load(EVAL / "base" / f"{scenario}.npz")
        own = TestErrors.load(EVAL / "lora" / f"{scenario}.npz") if scenario in targets else None
        peers = {name: TestErrors.load(PEERS / name / f"{scenario}.npz") for name in names}
        r, m = compare(scenario, reference, own, peers, ev.n_boot, ev.seed)
        rows += r
        metrics[scenario] = m
    with atomic_path(OUT / "nmse_vs_snr.csv", suffix=".csv") as tmp:
        table(rows).to_csv(tmp, index=False)
    write_json(OUT / "metrics.json", metrics)


if __name__ == "__main__":
    cli.run(main)
