"""NMSE vs SNR of every method on fixed per-scenario test sets: evaluated in parts, reported once.

The fixed test set of a scenario (:func:`test_set`) holds ``n_per_snr`` realisations at each SNR,
re-synthesised bit-identically wherever it is needed from its own seed. Each evaluation part runs
some estimators on it and keeps their per-sample squared errors (:class:`TestErrors`, one ``.npz``
per scenario): the baselines and the base model in one part, each adapter in its own, so an
adapter change re-evaluates only that adapter. :func:`build_report` then joins the parts, checks
that they saw the same test samples, and computes every number of the reports.

NMSE of one sample is ``||H_est - H||^2 / ||H||^2`` over the used subcarriers; a method's NMSE at
an SNR is the mean over the test samples (linear), in dB. ``ci_db`` is the half-width of its 95%
interval from a bootstrap over test PDPs (:mod:`chanest.evaluation.stats`: realisations sharing a PDP are not
independent); ``nmse_agg_db`` is the aggregate ``sum ||H_est - H||^2 / sum ||H||^2``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from chanest.evaluation import stats
from chanest.estimators.baselines import StatLMMSE, genie_lmmse, ls_linear
from chanest.estimators.nomp import NOMP
from chanest.utils.io import write_npz
from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import name_key
from chanest.channel.sampler import ChannelBatch, ChannelSampler

log = logging.getLogger(__name__)

Estimator = Callable[[ChannelBatch], Tensor]

#: SNR range over which the gap to the genie bound is averaged (the project's quality goal).
GAP_SNR_DB = (0.0, 30.0)

#: The rows of a scenario in the reports, in this order (adapted models on targets only).
METHODS = ("ls", "lmmse_stat", "nomp", "lmmse_genie", "base", "lora", "full_ft", "scratch")

#: The learned methods, each compared with NOMP (the training-free off-grid peer) in the report.
LEARNED = ("base", "lora", "full_ft", "scratch")


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


def baselines(ofdm: OFDMConfig, stat: StatLMMSE, nomp: NOMP | None = None) -> dict[str, Estimator]:
    """The classical estimators on a batch: LS + linear interpolation, the LMMSE with the scenario
    statistics ``stat`` (from its training PDPs), NOMP (``nomp``, if given: off-grid sparse, told
    the noise variance) and the genie LMMSE (told each sample's PDP)."""
    methods = {
        "ls": lambda b: ls_linear(b.h_ls, ofdm),
        "lmmse_stat": lambda b: stat(b.h_ls, b.noise_var),
    }
    if nomp is not None:
        methods["nomp"] = lambda b: nomp(b.h_ls, b.noise_var)
    methods["lmmse_genie"] = lambda b: genie_lmmse(b.h_ls, b.delays_s, b.powers, b.noise_var, ofdm)
    return methods


def cross_mask(snr_db: Tensor | np.ndarray, n: int) -> np.ndarray:
    """(B,) bool: the first ``n`` samples of each SNR (the subset of the cross-scenario table)."""
    snr = np.asarray(snr_db.cpu() if isinstance(snr_db, Tensor) else snr_db)
    keep = np.zeros(snr.shape, dtype=bool)
    for s in np.unique(snr):
        keep[np.flatnonzero(snr == s)[:n]] = True
    return keep


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


# --------------------------------------------------------------------------------------------
# One evaluation part: per-sample errors of some methods on (a subset of) one test set
# --------------------------------------------------------------------------------------------


@dataclass
class TestErrors:
    """Per-sample squared errors of some methods on samples ``index`` of a scenario's test set.

    index:     (n,) int64 positions in the full test set (:func:`test_set`).
    snr_db:    (n,) float32 SNR of each sample, dB.
    pdp_index: (n,) int64 its PDP (index into the scenario's test PDPs): the bootstrap cluster.
    energy:    (n,) float64 ``||H||^2`` of each sample.
    errors:    method -> (n,) float64 ``||H_est - H||^2``.
    meta:      JSON-able facts about the models (e.g. ``trainable_parameters``).
    """

    __test__ = False  # not a pytest test class

    scenario: str
    index: np.ndarray
    snr_db: np.ndarray
    pdp_index: np.ndarray
    energy: np.ndarray
    errors: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        write_npz(path, scenario=np.array(self.scenario), index=self.index, snr_db=self.snr_db,
                  pdp_index=self.pdp_index, energy=self.energy, meta=np.array(json.dumps(self.meta)),
                  **{f"err_{k}": v for k, v in self.errors.items()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> TestErrors:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no evaluation part; run `dvc repro`")
        with np.load(path, allow_pickle=False) as z:
            return cls(str(z["scenario"]), z["index"], z["snr_db"], z["pdp_index"], z["energy"],
                       {k[4:]: z[k] for k in z.files if k.startswith("err_")}, json.loads(str(z["meta"])))

    def check_same_samples(self, full: TestErrors, where: str) -> None:
        """Raise unless these samples are samples ``self.index`` of ``full`` (the same test set):
        equal SNRs and PDPs, channel energies equal to float round-off."""
        sub = slice(None) if len(self.index) == len(full.index) else self.index
        same = (self.scenario == full.scenario and np.array_equal(self.snr_db, full.snr_db[sub])
                and np.array_equal(self.pdp_index, full.pdp_index[sub])
                and np.allclose(self.energy, full.energy[sub], rtol=1e-5, atol=0.0))
        if not same:
            raise ValueError(f"{where}: evaluated on other test samples of {self.scenario} than the "
                             "reference part (stale outputs or changed eval params): re-run `dvc repro`")


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


# --------------------------------------------------------------------------------------------
# The report: NMSE rows, metrics with bootstrap intervals, the cross-scenario table
# --------------------------------------------------------------------------------------------


@dataclass
class Report:
    rows: pd.DataFrame  # scenario, method, snr_db, nmse_db, ci_db, nmse_agg_db
    cross: pd.DataFrame  # model, scenario, nmse_db_mean
    metrics: dict  # {scenario: {method: {...}, lora_gain_db, lora_gain_ci_db, ...}}


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def build_report(
    reference: dict[str, TestErrors],
    adapters: dict[str, dict[str, TestErrors]],
    cross_n_samples: int,
    n_boot: int,
    seed: int,
) -> Report:
    """Join the evaluation parts into the reports.

    reference: scenario -> the baselines and ``base`` on its full test set.
    adapters: target -> scenario -> that target's adapter (``lora``; ``full_ft``, ``scratch`` if trained)
        on its own full test set, and ``lora`` on the cross subset (:func:`cross_mask`) of the
        other scenarios.
    Intervals: ``n_boot`` replicates of the PDP bootstrap, seeded by ``seed`` and the scenario.
    ``gap_to_genie_db`` is the mean over the SNRs in :data:`GAP_SNR_DB` of (method - genie) NMSE
    in dB; ``lora_gain_db`` the mean over all SNRs of (base - lora) NMSE in dB, paired;
    ``ahead_of_nomp_db`` (learned methods) the mean over the same SNRs of (NOMP - method), paired.
    """
    rows, cross, metrics = [], [], {}
    for scenario, ref in reference.items():
        errors = dict(ref.errors)
        own = adapters.get(scenario, {}).get(scenario)
        if own is not None:
            own.check_same_samples(ref, f"adapter {scenario} on {scenario}")
            errors.update(own.errors)
        snrs = np.unique(ref.snr_db)
        rng = np.random.default_rng([seed, name_key(scenario)])
        weights = np.vstack([np.ones((1, len(ref.index))),
                             stats.cluster_weights(ref.pdp_index, n_boot, rng)])
        db = {m: stats.snr_means_db(errors[m] / ref.energy, ref.snr_db, snrs, weights)
              for m in METHODS if m in errors}  # (1 + n_boot, n_snr); row 0: the full test set
        in_gap = (snrs >= GAP_SNR_DB[0]) & (snrs <= GAP_SNR_DB[1])
        metrics[scenario] = {}
        for m, d in db.items():
            half = np.diff(stats.interval(d[1:]), axis=-1)[:, 0] / 2
            for j, s in enumerate(snrs):
                at = ref.snr_db == s
                rows.append({"scenario": scenario, "method": m, "snr_db": float(s),
                             "nmse_db": _r(d[0, j], 4), "ci_db": _r(half[j], 4),
                             "nmse_agg_db": _r(10 * math.log10(errors[m][at].sum() / ref.energy[at].sum()), 4)})
            gap = (d[:, in_gap] - db["lmmse_genie"][:, in_gap]).mean(axis=1)
            entry = {"nmse_db_mean": _r(d[0].mean())}
            for s in (10.0, 20.0):
                if s in snrs:
                    entry[f"nmse_db_at_{int(s)}"] = _r(d[0, snrs == s][0])
            entry["gap_to_genie_db"] = _r(gap[0])
            entry["gap_to_genie_ci_db"] = [_r(v) for v in stats.interval(gap[1:])]
            if m in LEARNED and "nomp" in db:  # paired: how far ahead of NOMP (> 0: ahead)
                ahead = (db["nomp"][:, in_gap] - d[:, in_gap]).mean(axis=1)
                entry["ahead_of_nomp_db"] = _r(ahead[0])
                entry["ahead_of_nomp_ci_db"] = [_r(v) for v in stats.interval(ahead[1:])]
            metrics[scenario][m] = entry
        for m in ("lora", "full_ft", "scratch"):
            if m in db:
                gain = (db["base"] - db[m]).mean(axis=1)
                metrics[scenario][f"{m}_gain_db"] = _r(gain[0])
                metrics[scenario][f"{m}_gain_ci_db"] = [_r(v) for v in stats.interval(gain[1:])]
        if own is not None:
            metrics[scenario]["trainable_parameters"] = own.meta["trainable_parameters"]

        mask = cross_mask(ref.snr_db, cross_n_samples)
        on_subset = {"base": ref.errors["base"][mask]}
        for target, parts in adapters.items():
            part = parts[scenario]
            if target == scenario:
                on_subset[f"lora:{target}"] = part.errors["lora"][mask]
            else:
                part.check_same_samples(ref, f"adapter {target} on {scenario}")
                if not np.array_equal(part.index, np.flatnonzero(mask)):
                    raise ValueError(f"adapter {target} on {scenario}: not the cross subset of "
                                     f"eval.cross_n_samples = {cross_n_samples}: re-run `dvc repro`")
                on_subset[f"lora:{target}"] = part.errors["lora"]
        ones = np.ones((1, int(mask.sum())))
        for name, err in on_subset.items():
            d = stats.snr_means_db(err / ref.energy[mask], ref.snr_db[mask], snrs, ones)
            cross.append({"model": name, "scenario": scenario, "nmse_db_mean": _r(d.mean())})
    return Report(pd.DataFrame(rows), pd.DataFrame(cross), metrics)


def gains(metrics: dict) -> pd.DataFrame:
    """The paired gains over the base (``<m>_gain_db`` of :func:`build_report`'s metrics) as rows:
    scenario, method, gain_db, ci_low, ci_high (for ``dvc plots``)."""
    rows = [{"scenario": s, "method": m, "gain_db": entry[f"{m}_gain_db"],
             "ci_low": entry[f"{m}_gain_ci_db"][0], "ci_high": entry[f"{m}_gain_ci_db"][1]}
            for s, entry in metrics.items() for m in ("lora", "full_ft", "scratch") if f"{m}_gain_db" in entry]
    return pd.DataFrame(rows, columns=["scenario", "method", "gain_db", "ci_low", "ci_high"])


def wide(df: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """One scenario as ``snr_db`` + one NMSE (dB) column per method (for ``dvc plots``)."""
    sub = df[df.scenario == scenario]
    return sub.pivot(index="snr_db", columns="method", values="nmse_db")[
        list(dict.fromkeys(sub.method))
    ].reset_index()
