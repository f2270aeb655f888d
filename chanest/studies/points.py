"""Operating points: every method at one SNR per scenario, the way a study quotes its results.

A paper often reports a single number per scenario: the NMSE at the SNR of its test set (the
research chanest replaces quoted its LoRA models on InF_Los at 21.7 dB and RMa_Los at 6.2 dB).
The ``points`` stage evaluates every method there on a fixed test set of its own
(``points.n_samples`` realisations at that SNR, seeded by ``points.seed``, drawn from the same test
PDPs as the SNR sweep), and :func:`summarise` turns the per-sample errors into NMSE, gap to the
genie and the paired gain of each adapted model over the base, each with its 95% PDP-bootstrap
interval (:mod:`chanest.evaluation.stats`: realisations sharing a PDP are not independent).

``params.yaml``::

    points:
      snr_db: {InF_Los: 21.7, RMa_Los: 6.2}   # scenario -> SNR (dB)
      n_samples: 1000                         # realisations per point
      seed: 17                                # the points' own test-set seed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from chanest.errors import InputError
from chanest.evaluation import methods, stats
from chanest.evaluation.report import LEARNED, METHODS, TestErrors
from chanest.utils.params import Range, from_section, get
from chanest.channel.pdp import check_scenario, name_key

#: Methods compared with the base in pairs (when present).
ADAPTED = methods.ADAPTED


@dataclass(frozen=True)
class PointsParams:
    """The ``points`` section of ``params.yaml``."""

    snr_db: dict[str, float] = field(default_factory=dict)
    n_samples: int = 1000
    seed: int = 17

    RANGES: ClassVar[dict[str, Range]] = {"n_samples": Range(2.0)}

    def __post_init__(self) -> None:
        if not self.snr_db:
            raise ValueError("snr_db is empty: name at least one scenario and its SNR (dB)")
        for name in self.snr_db:
            check_scenario(name)


def points_params(params: dict) -> PointsParams:
    """The ``points`` params section as a :class:`PointsParams`."""
    return from_section(PointsParams, get(params, "points"), "points")


def _r(x: float) -> float:
    return round(float(x), 3)


def summarise(errors: TestErrors, n_boot: int, seed: int) -> dict:
    """Metrics of every method in ``errors`` (one scenario, one SNR), with paired intervals.

    Returns ``{"snr_db", "n_samples", "test_pdps", <method>: {"nmse_db", "nmse_ci_db",
    "gap_to_genie_db", "gap_to_genie_ci_db"[, "ahead_of_nomp_db", "ahead_of_nomp_ci_db"]},
    "<m>_gain_db", "<m>_gain_ci_db"}`` where a gain is base minus ``m`` NMSE (dB) and the lead
    over NOMP is NOMP minus ``m`` (learned methods), on the same samples and bootstrap replicates.
    """
    snrs = np.unique(errors.snr_db)
    if len(snrs) != 1:
        raise InputError(f"{errors.scenario}: an operating point has one SNR, got {snrs.tolist()}")
    paired = stats.PairedDB(errors.energy, errors.snr_db, errors.pdp_index, n_boot,
                            np.random.default_rng([seed, name_key(errors.scenario), 1]))
    db = {m: paired(errors.errors[m])[:, 0] for m in METHODS if m in errors.errors}  # (1 + n_boot,)
    out: dict = {"snr_db": round(float(snrs[0]), 3), "n_samples": len(errors.index),
                 "test_pdps": int(len(np.unique(errors.pdp_index)))}
    for m, d in db.items():
        out[m] = {}
        out[m]["nmse_db"], out[m]["nmse_ci_db"] = stats.estimate(d)
        out[m]["gap_to_genie_db"], out[m]["gap_to_genie_ci_db"] = stats.estimate(d - db["lmmse_genie"])
        if m in LEARNED and "nomp" in db:  # paired: how far ahead of NOMP (> 0: ahead)
            out[m]["ahead_of_nomp_db"], out[m]["ahead_of_nomp_ci_db"] = stats.estimate(db["nomp"] - d)
    for m in ADAPTED:
        if m in db:
            out[f"{m}_gain_db"], out[f"{m}_gain_ci_db"] = stats.estimate(db["base"] - db[m])
    return out


def table(metrics: dict[str, dict]) -> pd.DataFrame:
    """One row per scenario and method: scenario, snr_db, method, nmse_db, ci_low, ci_high,
    gap_to_genie_db (the CSV beside ``reports/points.json``)."""
    rows = []
    for scenario, point in metrics.items():
        for m in METHODS:
            if m in point:
                e = point[m]
                rows.append({"scenario": scenario, "snr_db": point["snr_db"], "method": m,
                             "nmse_db": e["nmse_db"], "ci_low": e["nmse_ci_db"][0], "ci_high": e["nmse_ci_db"][1],
                             "gap_to_genie_db": e["gap_to_genie_db"]})
    return pd.DataFrame(rows)
