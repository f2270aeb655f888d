"""Where the adapted estimator's distance to the genie lies at an operating point, and what is left.

    cd research && python ../benchmarks/point_split.py [--points InF_Los:21.7] [--n 1000] [--json]

Needs the pipeline's outputs (after ``dvc repro research/dvc.yaml``: processed PDPs and
``models/lora/<scenario>``), run from the pipeline's folder. On each point's test set (as
``points`` draws it: ``points.seed``, the target's test PDPs) it splits the samples by whether
the adapted estimator's own off-grid front-end found as many taps as the sample has
(``count_right``) or not (``count_wrong``), and gives the gap to the genie LMMSE (dB) on all
samples and on each group, of

- ``lora``: the adapted estimator (``models/lora/<scenario>``, merged weights);
- ``nomp``: the NOMP baseline (``nomp:`` params);
- ``atoms``: the front-end's taps with their least-squares gains, nothing learned;
- ``oracle``: ``atoms`` where the count is right and ``lora`` elsewhere. It needs the truth: it
  is what telling the two groups apart perfectly would be worth to these two estimates;
- ``next_peaks``: ``atoms`` plus the strongest peak of the residual they leave (on NOMP's
  detection grid, Newton-refined, its gain by least squares on the residual), then the next
  one, each scaled by the shrinkage that is best for its 0.5 dB bin of SNR over the pilots.
  The shrinkages are fitted on the validation PDPs (same seed, same SNR) and applied to the test
  samples: the most that looking for the missed taps below the stopping rule returns, with the
  evidence the residual shows at the peaks;
- the adapted estimator taken apart, each piece added to the one before (its own front-end
  and weights, nothing re-fitted): ``lmmse_atoms`` the LMMSE over the front-end's atoms with
  their learned priors (``AtomPower``) alone; ``+companions`` with the companion atoms too;
  ``+grid`` with the delay grid's prior too (the residual the transformer corrects);
  ``lora`` is that plus the transformer's correction. Where ``lora`` loses to ``atoms``, the
  steps show which piece costs it;
- ``grid_x<k>``: the full residual with the grid's total prior fixed at ``k`` times the power the
  atoms leave above the noise, in place of the learned gate's ``2 sigmoid(c)`` times it (so at
  most 2); with the gate's own scale per sample (10th, 50th and 90th percentiles).

It also gives the share of samples in each group, and the expected SNR over the pilots (the
profile's power of the tap over the per-tap noise ``s / n_pilots``) of the taps the front-end
misses (no atom within half a delay-resolution cell): 10th, 50th and 90th percentiles, dB.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chanest import config  # noqa: E402
from chanest.channel import data  # noqa: E402
from chanest.channel.response import tap_response  # noqa: E402
from chanest.estimators.baselines import genie_lmmse  # noqa: E402
from chanest.estimators.lora import load_adapted  # noqa: E402
from chanest.estimators.nomp import NOMP, _steer, nomp_config  # noqa: E402
from chanest.evaluation.evaluate import per_sample_errors, test_set  # noqa: E402
from chanest.utils.params import load_params  # noqa: E402

GRID_SCALES = (0.0, 0.5, 1.0, 2.0)  # the grid's total prior, in the residual's excess powers
BIN_DB = 0.5  # width of the SNR bins the next peaks' shrinkages are fitted on
N_PEAKS = 2


def _samples(scenario: str, split: str, snr_db: float, n: int, params: dict):
    ofdm, norm = config.ofdm(params), config.normalisation(params)
    sources, _ = config.scenarios(params)
    group = "sources" if scenario in sources else "targets"
    return test_set(data.sampler(Path("data/processed") / group, [scenario], split, ofdm, norm, "cpu"),
                    (snr_db,), n, int(params["points"]["seed"]))


def _next_peaks(front: NOMP, y: torch.Tensor, rest: torch.Tensor, noise_var: torch.Tensor, df: float,
                n_sc: int) -> list[tuple[np.ndarray, torch.Tensor]]:
    """The residual's ``N_PEAKS`` strongest peaks, one after the other: for each, its SNR over the
    pilots (B,) dB and its response on every subcarrier (B, n_sc) with its least-squares gain."""
    n_i = front._n_i
    w = torch.stack([torch.ones_like(n_i), 2 * math.pi * n_i, (2 * math.pi * n_i) ** 2], -1).to(torch.complex128)
    everyone = torch.ones(y.shape[0], dtype=torch.bool)
    peaks, r = [], rest.clone()
    for _ in range(N_PEAKS):
        spec = torch.fft.ifft(r, n=front.n_grid).abs().pow(2)
        m = torch.where(front._window, spec, -1.0).argmax(-1)
        u = front._grid_u[m]
        u, gain, a = front._refine(r, u, _steer(u, n_i), everyone, n_i, w)
        snr = 10 * torch.log10(gain.abs().pow(2) * front.n / noise_var)
        peaks.append((snr.numpy(), tap_response((u / front.step_hz)[:, None], gain[:, None], df, n_sc)))
        r = r - gain[:, None] * a
    return peaks


def _evidence(scenario: str, split: str, snr_db: float, n: int, params: dict) -> dict:
    """One split's samples through every estimate above: normalised errors and the pieces."""
    ofdm = config.ofdm(params)
    df, n_sc = ofdm.subcarrier_spacing_hz, ofdm.n_subcarriers
    b = _samples(scenario, split, snr_db, n, params)
    h, y, s = b.h.to(torch.complex128), b.h_ls.to(torch.complex128), b.noise_var.double()
    energy = h.abs().pow(2).sum(-1)
    lora = load_adapted(Path("models/lora") / scenario)["lora"]
    front = lora.offgrid  # the estimator's own front-end (its model config)
    delays, gains = front.fit(y, s)
    atoms = tap_response(delays, gains, df, n_sc)
    rest = y - tap_response(delays, gains, front.step_hz, front.n, ofdm.pilot_offset * df)
    with torch.no_grad():
        lora_err = torch.as_tensor(per_sample_errors(lambda x: lora(x.h_ls, x.snr_db), b, 100))
        pieces, gate = _pieces(lora, b.h_ls, b.snr_db)
    genie = torch.as_tensor(per_sample_errors(
        lambda x: genie_lmmse(x.h_ls, x.delays_s, x.powers, x.noise_var, ofdm), b, 100))
    nomp = NOMP(ofdm, nomp_config(params))(b.h_ls, b.noise_var).to(torch.complex128)
    on = b.powers > 0
    found = gains.abs() > 0
    true = torch.where(on, b.delays_s, b.delays_s[:, :1]).double()
    cells = (delays[:, :, None] - true[:, None, :]).abs() / front.cell_s
    cells = cells.masked_fill(~(found[:, :, None] & on[:, None, :]), math.inf)
    missed = on & (torch.nn.functional.pad(cells, (0, 0, 0, 1), value=math.inf).amin(1) > 0.5)
    expected_snr = 10 * torch.log10(b.powers.double() * front.n / s[:, None])
    return {
        "energy": energy.numpy(),
        "right": (found.sum(-1) == on.sum(-1)).numpy(),
        "err": {"lora": lora_err.numpy(), "genie": genie.numpy(),
                "nomp": (nomp - h).abs().pow(2).sum(-1).numpy(),
                "atoms": (atoms - h).abs().pow(2).sum(-1).numpy()}
        | {k: (v.to(torch.complex128) - h).abs().pow(2).sum(-1).numpy() for k, v in pieces.items()},
        "atoms_residual": h - atoms,  # (B, n_sc): what the atoms leave of the channel
        "peaks": _next_peaks(front, y, rest, s, df, n_sc),
        "missed_snr_db": expected_snr[missed].numpy(),
        "gate_scale": gate,
    }


def _pieces(model, h_ls: torch.Tensor, snr_db: torch.Tensor) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """The adapted estimator's residual built up piece by piece (see the module docstring), each
    (B, n_sc) complex on the channel's scale; mirrors ``ChannelEstimator.residual_estimate``.
    Then ``grid_x<k>``: the full residual with the grid's total prior at ``k`` times the residual
    power the atoms leave above the noise, in place of the learned gate's ``2 sigmoid(c)`` (at
    most 2) times it. Also returns that learned scale, (B,)."""
    scale = h_ls.abs().pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
    y = h_ls / scale
    channel = 1.0 / scale[:, 0].float() ** 2
    noise_var = torch.pow(10.0, -snr_db.float() / 10) * channel
    atoms, gains = model.offgrid.fit(y, noise_var)
    at_pilots = tap_response(atoms, gains, model.offgrid.step_hz, model.offgrid.n,
                             model.cfg.pilot_indices[0] * model.cfg.subcarrier_spacing_hz)
    rest = (y.to(torch.complex128) - at_pilots).to(y.dtype)
    power = model.atom_power(gains, atoms, noise_var, snr_db)
    no_grid = torch.zeros(y.shape[0], model.grid_lmmse.n_grid)
    out = {"lmmse_atoms": model.grid_lmmse(y, noise_var, no_grid, atoms=atoms, atom_power=power)}
    if model.cfg.offgrid_companions:
        extra, extra_power = model.companion_power(atoms, gains, rest, noise_var, snr_db)
        atoms, power = torch.cat([atoms, extra], -1), torch.cat([power, extra_power], -1)
        out["+companions"] = model.grid_lmmse(y, noise_var, no_grid, atoms=atoms, atom_power=power)
    out["+grid"] = model.residual_estimate(y, snr_db, scale)
    left = (rest.abs().pow(2).mean(-1).float() - noise_var).clamp_min(1e-4 * channel)
    logits, gate = model.delay_prior(model.grid_lmmse.matched_filter(y), noise_var, snr_db,
                                     model.grid_lmmse.matched_filter(rest))
    for k in GRID_SCALES:
        grid = torch.softmax(logits, dim=-1) * (k * left)[:, None]
        out[f"grid_x{k:g}"] = model.grid_lmmse(y, noise_var, grid, atoms=atoms, atom_power=power)
    return {k: v * scale for k, v in out.items()}, (2 * torch.sigmoid(gate)).numpy()


def _bin(snr_db: np.ndarray) -> np.ndarray:
    return np.floor(snr_db / BIN_DB).astype(np.int64)


def _fit_shrinkage(ev: dict) -> list[dict[int, float]]:
    """Per peak, the least-squares optimal scale in [0, 1] of its response for each SNR bin
    (normalised errors; bins with fewer than 5 samples get 0)."""
    out, e = [], ev["atoms_residual"].clone()
    weight = torch.as_tensor(1.0 / ev["energy"])
    for snr_db, c in ev["peaks"]:
        num = ((e.conj() * c).real.sum(-1) * weight).numpy()
        den = (c.abs().pow(2).sum(-1) * weight).numpy()
        bins = _bin(snr_db)
        scale = {int(k): float(np.clip(num[bins == k].sum() / den[bins == k].sum(), 0.0, 1.0))
                 for k in np.unique(bins) if (bins == k).sum() >= 5}
        out.append(scale)
        e = e - torch.as_tensor([scale.get(int(k), 0.0) for k in bins])[:, None] * c
    return out


def _apply_shrinkage(ev: dict, shrinkage: list[dict[int, float]]) -> np.ndarray:
    e = ev["atoms_residual"].clone()
    for (snr_db, c), scale in zip(ev["peaks"], shrinkage):
        e = e - torch.as_tensor([scale.get(int(k), 0.0) for k in _bin(snr_db)])[:, None] * c
    return e.abs().pow(2).sum(-1).numpy()


def split(scenario: str, snr_db: float, n: int, params: dict) -> dict:
    test = _evidence(scenario, "test", snr_db, n, params)
    shrinkage = _fit_shrinkage(_evidence(scenario, "val", snr_db, n, params))
    err = test["err"]
    err["oracle"] = np.where(test["right"], err["atoms"], err["lora"])
    err["next_peaks"] = _apply_shrinkage(test, shrinkage)

    def gap(name: str, mask: np.ndarray) -> float:
        e, g = err[name][mask] / test["energy"][mask], err["genie"][mask] / test["energy"][mask]
        return round(10 * math.log10(e.mean() / g.mean()), 3)

    groups = {"all": np.ones_like(test["right"]), "count_right": test["right"], "count_wrong": ~test["right"]}
    methods = ("lora", "nomp", "atoms", "oracle", "next_peaks") + tuple(k for k in err if k[0] in "l+g"
                                                                        and k not in ("lora", "genie"))
    return {
        "gap_to_genie_db": {g: {m: gap(m, mask) for m in methods} for g, mask in groups.items()},
        "share_count_wrong": round(float((~test["right"]).mean()), 3),
        "gate_scale_p10_p50_p90": [round(float(x), 3) for x in np.percentile(test["gate_scale"], [10, 50, 90])],
        "missed_taps": int(test["missed_snr_db"].size),
        "missed_expected_snr_db_p10_p50_p90": [round(float(x), 1) for x in
                                                np.percentile(test["missed_snr_db"], [10, 50, 90])]
        if test["missed_snr_db"].size else [],
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
    torch.set_grad_enabled(False)
    out = {f"{sc}@{snr}": split(sc, snr, args.n, params) for sc, snr in points.items()}
    if args.json:
        print(json.dumps(out, indent=1))
        return
    for point, v in out.items():
        print(f"{point}: front-end tap count wrong on {v['share_count_wrong']:.1%} of samples; "
              f"{v['missed_taps']} missed taps, expected SNR (dB, p10/p50/p90) {v['missed_expected_snr_db_p10_p50_p90']}; "
              f"the grid gate's scale (p10/p50/p90) {v['gate_scale_p10_p50_p90']}")
        for group, gaps in v["gap_to_genie_db"].items():
            print(f"  {group:12s} gap to the genie (dB): " + ", ".join(f"{m} {x:.3f}" for m, x in gaps.items()))


if __name__ == "__main__":
    main()
