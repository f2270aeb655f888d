"""From per-sample errors to the reports: evaluation parts on disk, metrics with paired intervals.

An evaluation part (:class:`TestErrors`, one ``.npz``) holds the per-sample squared errors of some
methods on (a subset of) one scenario's fixed test set; :func:`build_report` joins the parts,
checks that they saw the same samples, and computes every number of the reports. Nothing here runs
a model or imports torch, so the `report` stage is quick to start.

NMSE of one sample is ``||H_est - H||^2 / ||H||^2`` over the used subcarriers; a method's NMSE at
an SNR is the mean over the test samples (linear), in dB. ``ci_db`` is the half-width of its 95%
interval from a bootstrap over test PDPs (:mod:`chanest.evaluation.stats`: realisations sharing a PDP are not
independent); ``nmse_agg_db`` is the aggregate ``sum ||H_est - H||^2 / sum ||H||^2``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from chanest.channel.pdp import name_key
from chanest.errors import InputError, MissingInputError
from chanest.evaluation import methods, stats
from chanest.utils.io import write_npz

#: SNR range over which the gap to the genie bound is averaged (the project's quality goal).
GAP_SNR_DB = (0.0, 30.0)

#: The rows of a scenario in the reports, in this order (adapted models on targets only), and the
#: learned methods, each compared with NOMP: from the one table of methods.
METHODS, LEARNED = methods.NAMES, methods.LEARNED



def cross_mask(snr_db, n: int) -> np.ndarray:
    """(B,) bool: the first ``n`` samples of each SNR (the subset of the cross-scenario table)."""
    snr = np.asarray(snr_db.cpu() if hasattr(snr_db, "cpu") else snr_db)  # a torch tensor or an array
    keep = np.zeros(snr.shape, dtype=bool)
    for s in np.unique(snr):
        keep[np.flatnonzero(snr == s)[:n]] = True
    return keep


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
            raise MissingInputError(f"{path}: no evaluation part; run `dvc repro`")
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
            raise InputError(f"{where}: evaluated on other test samples of {self.scenario} than the "
                             "reference part (stale outputs or changed eval params): re-run `dvc repro`")


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
        unknown = sorted(set(errors) - set(METHODS))
        if unknown:  # a method the report has no row for is an error, never a silently missing row
            raise InputError(f"{scenario}: the evaluation parts hold {unknown}, which the report does not "
                             f"know (METHODS: {', '.join(METHODS)}): stale parts (re-run `dvc repro`) "
                             "or a method not in the table of chanest/evaluation/methods.py")
        paired = stats.PairedDB(ref.energy, ref.snr_db, ref.pdp_index, n_boot,
                                np.random.default_rng([seed, name_key(scenario)]))
        snrs = paired.snrs
        db = {m: paired(errors[m]) for m in METHODS if m in errors}  # (1 + n_boot, n_snr)
        metrics[scenario] = {}
        for m, d in db.items():
            half = np.diff(stats.interval(d[1:]), axis=-1)[:, 0] / 2
            for j, s in enumerate(snrs):
                at = ref.snr_db == s
                rows.append({"scenario": scenario, "method": m, "snr_db": float(s),
                             "nmse_db": _r(d[0, j], 4), "ci_db": _r(half[j], 4),
                             "nmse_agg_db": _r(10 * math.log10(errors[m][at].sum() / ref.energy[at].sum()), 4)})
            entry = {"nmse_db_mean": _r(d[0].mean())}
            for s in (10.0, 20.0):
                if s in snrs:
                    entry[f"nmse_db_at_{int(s)}"] = _r(d[0, snrs == s][0])
            entry["gap_to_genie_db"], entry["gap_to_genie_ci_db"] = stats.estimate(
                paired.mean_over(d - db["lmmse_genie"], GAP_SNR_DB))
            if m in LEARNED and "nomp" in db:  # paired: how far ahead of NOMP (> 0: ahead)
                entry["ahead_of_nomp_db"], entry["ahead_of_nomp_ci_db"] = stats.estimate(
                    paired.mean_over(db["nomp"] - d, GAP_SNR_DB))
            metrics[scenario][m] = entry
        for m in methods.ADAPTED:
            if m in db:  # over every SNR of the sweep
                metrics[scenario][f"{m}_gain_db"], metrics[scenario][f"{m}_gain_ci_db"] = stats.estimate(
                    (db["base"] - db[m]).mean(axis=1))
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
                    raise InputError(f"adapter {target} on {scenario}: not the cross subset of "
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
