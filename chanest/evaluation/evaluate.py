"""NMSE vs SNR of every method on fixed per-scenario test sets: evaluated in parts, reported once.

The fixed test set of a scenario (:func:`test_set`) holds ``n_per_snr`` realisations at each SNR,
re-synthesised bit-identically wherever it is needed from its own seed. Each evaluation part runs
some estimators on it and keeps their per-sample squared errors (:class:`TestErrors`, one ``.npz``
per scenario and part): the baselines and the base model in one part per scenario, each adapter on
its own target in another, every adapter on the other scenarios' cross subsets in a third, so an
adapter change re-evaluates only that adapter (and the cross table). :mod:`chanest.evaluation.report`
then joins the parts into the reports.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import name_key
from chanest.channel.preprocess import load_processed
from chanest.channel.sampler import ChannelBatch, ChannelSampler
from chanest.estimators.baselines import StatLMMSE, genie_lmmse, ls_linear
from chanest.estimators.nomp import NOMP
from chanest.evaluation.methods import BUILDERS
from chanest.evaluation.report import (  # noqa: F401  (the evaluation's public names, one import away)
    GAP_SNR_DB,
    LEARNED,
    METHODS,
    Report,
    TestErrors,
    build_report,
    cross_mask,
    gains,
    wide,
)

log = logging.getLogger(__name__)

Estimator = Callable[[ChannelBatch], Tensor]


# --------------------------------------------------------------------------------------------
# The fixed test sets
# --------------------------------------------------------------------------------------------


def test_set(
    sampler: ChannelSampler, snr_db: tuple[float, ...], n_per_snr: int, eval_seed: int
) -> ChannelBatch:
    """The fixed test batch of one scenario: ``n_per_snr`` samples at each SNR of ``snr_db``.

    Seeded by ``eval_seed`` and the scenario's name only (:func:`~chanest.channel.pdp.name_key`),
    so the test set stays the same when the training seed, the scenario lists or their order change. The random
    numbers are drawn on the CPU whatever the sampler's device, so a GPU run sees the same set.
    """
    key = np.random.SeedSequence([eval_seed, name_key(sampler.pdps.scenario)]).generate_state(1, np.uint64)[0]
    g = torch.Generator().manual_seed(int(key))
    snr = torch.tensor(snr_db).repeat_interleave(n_per_snr)
    return sampler.sample(len(snr), snr, g)


test_set.__test__ = False  # not a pytest test


@dataclasses.dataclass(frozen=True)
class Context:
    """What a plugin method is built from (:mod:`chanest.evaluation.plugins`): the numerology and
    the scenario's statistics LMMSE (from its training PDPs)."""

    ofdm: OFDMConfig
    stat: StatLMMSE


def baselines(ofdm: OFDMConfig, stat: StatLMMSE, nomp: NOMP | None = None) -> dict[str, Estimator]:
    """The classical estimators on a batch: LS + linear interpolation, the LMMSE with the scenario
    statistics ``stat`` (from its training PDPs), NOMP (``nomp``, if given: off-grid sparse, told
    the noise variance), the methods of :mod:`chanest.evaluation.plugins` and the genie LMMSE
    (told each sample's PDP)."""
    methods = {
        "ls": lambda b: ls_linear(b.h_ls, ofdm),
        "lmmse_stat": lambda b: stat(b.h_ls, b.noise_var),
    }
    if nomp is not None:
        methods["nomp"] = lambda b: nomp(b.h_ls, b.noise_var)
    context = Context(ofdm, stat)
    methods |= {name: build(context) for name, build in BUILDERS.items()}
    methods["lmmse_genie"] = lambda b: genie_lmmse(b.h_ls, b.delays_s, b.powers, b.noise_var, ofdm)
    return methods


def learned(models: dict[str, nn.Module]) -> dict[str, Estimator]:
    """Learned estimators as methods: each called on a batch's LS pilots and SNR."""
    return {name: (lambda b, m=m: m(b.h_ls, b.snr_db)) for name, m in models.items()}


def scenario_methods(
    ofdm: OFDMConfig,
    processed_dir: str | os.PathLike,
    scenario: str,
    device: torch.device | str,
    nomp: NOMP | None = None,
    models: dict[str, nn.Module] | None = None,
) -> dict[str, Estimator]:
    """The methods evaluated on one scenario, in the reports' order: the classical ones
    (:func:`baselines`, its LMMSE with the statistics of the scenario's train PDPs in
    ``processed_dir``; NOMP if given), then the learned ``models`` (:func:`learned`)."""
    stat = StatLMMSE.from_pdps(load_processed(processed_dir, scenario, "train"), ofdm, device=device)
    return baselines(ofdm, stat, nomp) | learned(models or {})


def slice_batch(batch: ChannelBatch, start: int, stop: int) -> ChannelBatch:
    """Samples ``start:stop`` of every field of a batch."""
    return ChannelBatch(**{f.name: getattr(batch, f.name)[start:stop] for f in dataclasses.fields(batch)})


def select(batch: ChannelBatch, index: np.ndarray) -> ChannelBatch:
    """The samples ``index`` (int positions) of every field of a batch."""
    idx = torch.as_tensor(index, device=batch.h.device)
    return ChannelBatch(**{f.name: getattr(batch, f.name)[idx] for f in dataclasses.fields(batch)})


@torch.inference_mode()
def per_sample_errors(estimate: Estimator, batch: ChannelBatch, chunk: int) -> np.ndarray:
    """(B,) float64 squared error ``||H_est - H||^2`` of each sample, in chunks of ``chunk``."""
    errs = []
    for i in range(0, batch.h.shape[0], chunk):
        part = slice_batch(batch, i, i + chunk)
        errs.append((estimate(part) - part.h).abs().pow(2).sum(-1).double().cpu())
    return torch.cat(errs).numpy()


def evaluate(
    scenario: str,
    methods: dict[str, Estimator],
    batch: ChannelBatch,
    chunk: int,
    index: np.ndarray | None = None,
    meta: dict | None = None,
) -> TestErrors:
    """Run every estimator of ``methods`` on samples ``index`` (default: all) of a test batch."""
    index = np.arange(len(batch)) if index is None else np.asarray(index, dtype=np.int64)
    part = batch if len(index) == len(batch) else select(batch, index)
    out = TestErrors(scenario, index, part.snr_db.cpu().numpy(), part.pdp_index.cpu().numpy(),
                     part.h.abs().pow(2).sum(-1).double().cpu().numpy(), meta=meta or {})
    for name, estimate in methods.items():
        t0 = time.perf_counter()
        out.errors[name] = per_sample_errors(estimate, part, chunk)
        dt = time.perf_counter() - t0
        log.info("%s: %s on %d samples in %.1f s (%.0f samples/s)", scenario, name, len(part), dt,
                 len(part) / max(dt, 1e-9))
    return out
