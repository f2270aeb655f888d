"""How far from the genie LMMSE can an estimator that does not know the PDP expect to get?

    python benchmarks/oracle_gaps.py [--scenarios UMa_Los,RMa_Los] [--n 200] [--json]

Needs ``data/processed`` (``dvc repro preprocess``). On each scenario's fixed test set (as the
evaluation stages draw it, at SNR 0/10/20/30 dB) it reports the gap to the genie LMMSE, in dB
averaged over those SNRs, of LMMSE estimators that are told progressively less of each sample's
power-delay profile:

- ``pdp_on_grid``: the true tap powers, their delays rounded onto a grid of a quarter of the
  pilots' delay resolution (``1 / (4 n_pilots pilot_spacing df)``);
- ``support_window``: only where the taps are (first to last tap within -40 dB of the strongest,
  plus one delay-resolution cell each side), as a flat PDP over that window;
- ``lmmse_stat``: nothing per sample (the scenario's average covariance).

These are yardsticks, not bounds: they show how much of the genie's advantage comes from knowing
each sample's PDP shape rather than its extent, which a learned estimator must infer from one
noisy slot of pilots.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chanest import config  # noqa: E402
from chanest.channel import data  # noqa: E402
from chanest.estimators.baselines import StatLMMSE, genie_lmmse  # noqa: E402
from chanest.evaluation.evaluate import test_set  # noqa: E402
from chanest.channel.ofdm import OFDMConfig  # noqa: E402
from chanest.utils.params import load_params  # noqa: E402
from chanest.channel.sampler import ChannelBatch, nmse  # noqa: E402

SNRS = (0.0, 10.0, 20.0, 30.0)


def grid_lmmse(batch: ChannelBatch, tau: torch.Tensor, prior: torch.Tensor, ofdm: OFDMConfig) -> torch.Tensor:
    """LMMSE with a prior of independent taps on fixed delays: tau (G,) s, prior (B, G) linear.

    That is :func:`genie_lmmse` with the grid as the taps; run in chunks, since it holds a few
    (chunk, G, G) complex128 matrices.
    """
    out = []
    for i in range(0, len(batch), 200):
        part = slice(i, i + 200)
        delays = tau.expand(batch.h_ls[part].shape[0], -1)
        out.append(genie_lmmse(batch.h_ls[part], delays, prior[part], batch.noise_var[part], ofdm))
    return torch.cat(out)


def gaps(scenario: str, ofdm: OFDMConfig, norm: str, n: int, seed: int) -> dict[str, float]:
    test = test_set(data.sampler("data/processed", [scenario], "test", ofdm, norm, "cpu"), SNRS, n, seed)
    train = data.sampler("data/processed", [scenario], "train", ofdm, norm, "cpu")
    cell = 1.0 / (ofdm.n_pilots * ofdm.pilot_spacing * ofdm.subcarrier_spacing_hz)
    tau = torch.arange(0.0, 1.25 * ofdm.cp_s + ofdm.max_delay_offset_s, cell / 4, dtype=torch.float64)
    p, delays = test.powers.double(), test.delays_s

    pos = (delays / (cell / 4)).clamp(max=len(tau) - 1.001)  # split each tap over its two neighbours
    lo = pos.floor().long()
    on_grid = torch.zeros(len(test), len(tau), dtype=torch.float64)
    on_grid.scatter_add_(1, lo, p * (1 - (pos - lo))).scatter_add_(1, lo + 1, p * (pos - lo))

    strong = p > 1e-4 * p.amax(1, keepdim=True)
    first = torch.where(strong, delays, torch.inf).amin(1, keepdim=True) - cell
    last = torch.where(strong, delays, -torch.inf).amax(1, keepdim=True) + cell
    window = ((tau >= first) & (tau <= last)).double() + 1e-9

    estimates = {
        "lmmse_genie": genie_lmmse(test.h_ls, delays, test.powers, test.noise_var, ofdm),
        "pdp_on_grid": grid_lmmse(test, tau, on_grid + 1e-9 * on_grid.amax(1, keepdim=True), ofdm),
        "support_window": grid_lmmse(test, tau, window / window.sum(1, keepdim=True), ofdm),
        "lmmse_stat": StatLMMSE.from_pdps(train.pdps, ofdm)(test.h_ls, test.noise_var),
    }
    per_snr = {
        name: [10 * math.log10(float(nmse(est, test.h)[test.snr_db == s].mean())) for s in SNRS]
        for name, est in estimates.items()
    }
    genie = per_snr.pop("lmmse_genie")
    return {name: round(sum(a - g for a, g in zip(v, genie)) / len(SNRS), 2) for name, v in per_snr.items()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default="UMa_Los,UMa_Nlos,RMa_Los,InF_Nlos")
    ap.add_argument("--n", type=int, default=200, help="test samples per SNR")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.chdir(REPO)
    params = load_params()
    ofdm, norm = config.ofdm(params), config.normalisation(params)
    seed = int(params["eval"]["seed"])
    result = {s: gaps(s, ofdm, norm, args.n, seed) for s in args.scenarios.split(",")}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
