"""NMSE vs SNR of every method on fixed per-scenario test sets.

NMSE of one sample is ||H_est - H||^2 / ||H||^2 over the used subcarriers; a method's NMSE at an
SNR is the mean over the test samples (linear), reported in dB with a 95% confidence half-width
(normal approximation of the mean: 10/ln 10 * 1.96 * std / (sqrt(n) * mean)). ``nmse_agg_db`` is
the aggregate sum ||H_est - H||^2 / sum ||H||^2, robust when per-sample NMSE is heavy-tailed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pandas as pd
import torch
from torch import Tensor

from chanest.pdp import SCENARIOS
from chanest.synth import ChannelBatch, ChannelSampler, nmse

Estimator = Callable[[ChannelBatch], Tensor]

#: SNR range over which the gap to the genie bound is averaged (the project's quality goal).
GAP_SNR_DB = (0.0, 30.0)


def test_set(
    sampler: ChannelSampler, snr_db: tuple[float, ...], n_per_snr: int, eval_seed: int
) -> ChannelBatch:
    """The fixed test batch of one scenario: ``n_per_snr`` samples at each SNR of ``snr_db``.

    Seeded by ``eval_seed`` and the scenario's index in :data:`SCENARIOS` only, so the test set
    stays the same when the training seed, the scenario lists or their order change.
    """
    index = SCENARIOS.index(sampler.pdps.scenario) if sampler.pdps.scenario in SCENARIOS else 99
    g = torch.Generator(device=sampler.device).manual_seed(eval_seed * 1009 + index)
    snr = torch.tensor(snr_db, device=sampler.device).repeat_interleave(n_per_snr)
    return sampler.sample(len(snr), snr, g)


def slice_batch(batch: ChannelBatch, start: int, stop: int) -> ChannelBatch:
    """Samples ``start:stop`` of every field of a batch."""
    return ChannelBatch(**{f.name: getattr(batch, f.name)[start:stop] for f in dataclasses.fields(batch)})


def first_per_snr(batch: ChannelBatch, n: int) -> Tensor:
    """(B,) bool mask of the first ``n`` samples of each SNR of a :func:`test_set` batch."""
    keep = torch.zeros_like(batch.snr_db, dtype=torch.bool)
    for s in torch.unique(batch.snr_db):
        keep[torch.nonzero(batch.snr_db == s)[:n, 0]] = True
    return keep


def select(batch: ChannelBatch, mask: Tensor) -> ChannelBatch:
    """The samples of ``batch`` where ``mask`` (B,) bool is true."""
    return ChannelBatch(**{f.name: getattr(batch, f.name)[mask] for f in dataclasses.fields(batch)})


@torch.no_grad()
def per_sample_errors(estimate: Estimator, batch: ChannelBatch, chunk: int) -> tuple[Tensor, Tensor]:
    """(squared error, channel energy), each (B,) float64, computed in chunks of ``chunk``."""
    errs, energy = [], []
    for i in range(0, batch.h.shape[0], chunk):
        part = slice_batch(batch, i, i + chunk)
        est = estimate(part)
        errs.append((est - part.h).abs().pow(2).sum(-1).double())
        energy.append(part.h.abs().pow(2).sum(-1).double())
    return torch.cat(errs), torch.cat(energy)


def summarise(
    scenario: str, method: str, batch: ChannelBatch, err: Tensor, energy: Tensor
) -> list[dict]:
    """Rows ``scenario, method, snr_db, nmse_db, ci_db, nmse_agg_db`` per SNR of the batch."""
    rows = []
    snr = batch.snr_db.cpu()
    e, en = err.cpu(), energy.cpu()
    for s in torch.unique(snr).tolist():
        m = snr == s
        x = (e[m] / en[m]).numpy()
        mean = float(x.mean())
        ci = 10 / math.log(10) * 1.96 * float(x.std(ddof=1)) / (math.sqrt(len(x)) * mean) if len(x) > 1 else float("nan")
        rows.append({
            "scenario": scenario, "method": method, "snr_db": float(s),
            "nmse_db": round(10 * math.log10(mean), 4), "ci_db": round(ci, 4),
            "nmse_agg_db": round(10 * math.log10(float(e[m].sum() / en[m].sum())), 4),
        })
    return rows


def method_metrics(df: pd.DataFrame) -> dict:
    """``{scenario: {method: {nmse_db_mean, nmse_db_at_10, nmse_db_at_20, gap_to_genie_db}}}``.

    gap_to_genie_db: mean over the SNRs in :data:`GAP_SNR_DB` of (method - genie) NMSE in dB.
    """
    out: dict = {}
    for scenario, sdf in df.groupby("scenario", sort=False):
        genie = sdf[sdf.method == "lmmse_genie"].set_index("snr_db").nmse_db
        out[scenario] = {}
        for method, g in sdf.groupby("method", sort=False):
            g = g.set_index("snr_db").nmse_db
            in_range = g[(g.index >= GAP_SNR_DB[0]) & (g.index <= GAP_SNR_DB[1])]
            entry = {"nmse_db_mean": round(float(g.mean()), 3)}
            for s in (10.0, 20.0):
                if s in g.index:
                    entry[f"nmse_db_at_{int(s)}"] = round(float(g[s]), 3)
            if len(genie):
                entry["gap_to_genie_db"] = round(float((in_range - genie.reindex(in_range.index)).mean()), 3)
            out[scenario][method] = entry
    return out


def wide(df: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """One scenario as ``snr_db`` + one NMSE (dB) column per method (for ``dvc plots``)."""
    sub = df[df.scenario == scenario]
    return sub.pivot(index="snr_db", columns="method", values="nmse_db")[
        list(dict.fromkeys(sub.method))
    ].reset_index()
