"""What not knowing the delays costs: NOMP against the same taps fitted from their true delays.

    cd research && python ../benchmarks/delay_floor.py [--points InF_Los:21.7,RMa_Los:6.2] [--n 1000]

Needs the pipeline's processed PDPs (run from the pipeline's folder, e.g. ``research/`` after
``dvc repro research/dvc.yaml``). On the operating points' test sets (as ``points`` draws them:
``points.seed``, the targets' test PDPs) it prints the gap to the genie LMMSE (dB) of

- ``nomp``: the NOMP baseline (``nomp:`` params);
- ``ls_true_delays``: least squares told each sample's true tap delays (their number included);
- ``ml_from_true``: the same taps, but their delays refined from the truth by NOMP's own guarded
  Newton steps (5 cyclic passes) and re-fitted: a local maximum-likelihood estimate that does not
  know the delays but starts in their basin. At high SNR no estimator that must find the delays
  does much better (3 real unknowns per tap instead of the genie's 2: about 1.8 dB for resolved
  taps), so it is the floor the learned estimator and NOMP are measured against.

and where NOMP's own distance to that floor comes from, each with the same refinement:

- ``nomp_refined``: NOMP's taps, refined and re-fitted as ``ml_from_true`` (the yardstick of the
  two below);
- ``nomp_plus_missed``: those taps and every true tap they miss (none of them within half a
  delay-resolution cell), the missed ones started at their true delays;
- ``nomp_less_false``: those taps without its false atoms (no true tap within half a cell).

The ``n_`` entries count the missed taps, the samples with one, and the false atoms.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chanest import config  # noqa: E402
from chanest.channel import data  # noqa: E402
from chanest.channel.response import tap_response  # noqa: E402
from chanest.estimators.baselines import genie_lmmse  # noqa: E402
from chanest.estimators.nomp import NOMP, _steer, nomp_config  # noqa: E402
from chanest.evaluation.evaluate import test_set  # noqa: E402
from chanest.utils.params import load_params  # noqa: E402


def nmse_db(est: torch.Tensor, h: torch.Tensor) -> float:
    err = (est.to(torch.complex128) - h).abs().pow(2).sum(-1) / h.abs().pow(2).sum(-1)
    return 10 * math.log10(float(err.mean()))


def refine_from(nomp: NOMP, y: torch.Tensor, delays: torch.Tensor, on: torch.Tensor, noise_var: torch.Tensor,
                passes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Delays (B, K) s refined by NOMP's Newton steps, tap by tap, ``passes`` times; gains re-fitted
    by its ridge-guarded least squares. ``on`` (B, K): the taps that exist."""
    n_i = nomp._n_i
    w = torch.stack([torch.ones_like(n_i), 2 * math.pi * n_i, (2 * math.pi * n_i) ** 2], -1).to(torch.complex128)
    u = delays * nomp.step_hz
    a = _steer(u, n_i)
    g = nomp._refit(y, a, on, noise_var)
    r = y - torch.einsum("bk,bkn->bn", g, a)
    for _ in range(passes):
        for j in range(u.shape[1]):
            r_j = r + g[:, j, None] * a[:, j]
            u[:, j], g[:, j], a[:, j] = nomp._refine(r_j, u[:, j], a[:, j], on[:, j], n_i, w)
            r = r_j - g[:, j, None] * a[:, j]
        g = nomp._refit(y, a, on, noise_var)
        r = y - torch.einsum("bk,bkn->bn", g, a)
    return u / nomp.step_hz, g * on


def floor(scenario: str, snr_db: float, n: int, params: dict) -> dict[str, float]:
    ofdm, norm = config.ofdm(params), config.normalisation(params)
    sources, _ = config.scenarios(params)
    group = "sources" if scenario in sources else "targets"
    b = test_set(data.sampler(Path("data/processed") / group, [scenario], "test", ofdm, norm, "cpu"),
                 (snr_db,), n, int(params["points"]["seed"]))
    h, y, s = b.h.to(torch.complex128), b.h_ls.to(torch.complex128), b.noise_var.double()
    df, n_sc = ofdm.subcarrier_spacing_hz, ofdm.n_subcarriers
    genie = nmse_db(genie_lmmse(b.h_ls, b.delays_s, b.powers, b.noise_var, ofdm), h)
    nomp = NOMP(ofdm, nomp_config(params))
    on = b.powers > 0
    true = torch.where(on, b.delays_s, b.delays_s[:, :1])  # padding sits on the first tap, switched off
    ls = nomp._refit(y, _steer(true * nomp.step_hz, nomp._n_i), on, s)
    ml = refine_from(nomp, y, true.clone(), on, s)
    found_delays, found_gains = nomp.fit(b.h_ls, b.noise_var)  # NOMP once: its estimate is these taps
    nomp_h = tap_response(found_delays, found_gains, df, n_sc).to(b.h_ls.dtype)  # = nomp(b.h_ls, ...)
    found = found_gains.abs() > 0
    cells = (found_delays[:, :, None] - true[:, None, :]).abs() / nomp.cell_s  # (B, K found, T true)
    cells = cells.masked_fill(~(found[:, :, None] & on[:, None, :]), math.inf)
    # padded with an inf row and column, so that a sample with no atom (or no tap) still reduces
    cells = torch.nn.functional.pad(cells, (0, 1, 0, 1), value=math.inf)
    missed = on & (cells[:, :, :-1].amin(1) > 0.5)
    false = found & (cells[:, :-1, :].amin(2) > 0.5)
    refined = refine_from(nomp, y, found_delays.clone(), found, s)
    plus = refine_from(nomp, y, torch.cat([found_delays, true], 1), torch.cat([found, missed], 1), s)
    less = refine_from(nomp, y, found_delays.clone(), found & ~false, s)
    return {
        "nomp": round(nmse_db(nomp_h, h) - genie, 2),
        "ls_true_delays": round(nmse_db(tap_response(true, ls, df, n_sc), h) - genie, 2),
        "ml_from_true": round(nmse_db(tap_response(*ml, df, n_sc), h) - genie, 2),
        "nomp_refined": round(nmse_db(tap_response(*refined, df, n_sc), h) - genie, 2),
        "nomp_plus_missed": round(nmse_db(tap_response(*plus, df, n_sc), h) - genie, 2),
        "nomp_less_false": round(nmse_db(tap_response(*less, df, n_sc), h) - genie, 2),
        "n_missed_taps": int(missed.sum()),
        "n_samples_missing_one": int(missed.any(-1).sum()),
        "n_false_atoms": int(false.sum()),
        "genie_nmse_db": round(genie, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", default="", help="scenario:snr_db,...; default: the params' points.snr_db")
    ap.add_argument("--n", type=int, default=1000, help="realisations per point")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    params = load_params()
    points = ({k: float(v) for k, v in (p.split(":") for p in args.points.split(","))} if args.points
              else params["points"]["snr_db"])
    out = {f"{sc}@{snr}": floor(sc, snr, args.n, params) for sc, snr in points.items()}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for k, v in out.items():
            print(k, "gap to the genie (dB):", ", ".join(f"{m} {x}" for m, x in v.items()
                                                            if m != "genie_nmse_db" and not m.startswith("n_")),
                  "| missed taps", v["n_missed_taps"], "in", v["n_samples_missing_one"], "samples, false atoms",
                  v["n_false_atoms"])


if __name__ == "__main__":
    main()
