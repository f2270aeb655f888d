"""The link report: BLER vs SNR per point, and the SNR at 10% BLER with paired PDP-bootstrap intervals.

Input: the records :func:`chanest.studies.link.run_target` returns (:func:`chanest.studies.link.load`), one per
(MCS, method) curve, every decoded block with its SNR, test PDP and CRC failure. Per SNR point, ``bler`` and its exact
(Clopper-Pearson) 95% interval. The SNR at :data:`~chanest.studies.bler.TARGET_BLER` comes from a logistic
fit over the curve's waterfall (the points with BLER in [1%, 90%] and their neighbours), its 95%
interval from ``n_boot`` replicates that resample the target's test PDPs (a PDP's blocks at every
SNR together); all curves of an MCS use the same replicates, so ``loss_vs_perfect_db`` (the SNR a
method needs beyond perfect CSI) and the learned models' gain over the statistical LMMSE are
paired: at a shared SNR point both decoded the same blocks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from chanest.evaluation import stats
from chanest.studies.bler import TARGET_BLER, fit_logistic
from chanest.channel.pdp import name_key

KEY = f"snr_at_bler_{round(100 * TARGET_BLER)}pct_db"


def clopper_pearson(errors: int, n: int, level: float = stats.LEVEL) -> tuple[float, float]:
    """The exact binomial interval of a BLER of ``errors`` in ``n`` blocks (scipy's ``binomtest``)."""
    ci = binomtest(errors, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


def points(scenario: str, records: list[dict]) -> pd.DataFrame:
    """Rows of ``reports/bler_vs_snr.csv``: scenario, method, mcs, snr_db, bler, ci_low, ci_high,
    n_blocks, n_errors."""
    rows = []
    for r in records:
        snr, err = np.asarray(r["snr_db"]), np.asarray(r["error"])
        for s in np.unique(snr):
            n, e = int((snr == s).sum()), int(err[snr == s].sum())
            lo, hi = clopper_pearson(e, n)
            rows.append({"scenario": scenario, "method": r["method"], "mcs": r["mcs"], "snr_db": float(s),
                         "bler": round(e / n, 4), "ci_low": round(lo, 4), "ci_high": round(hi, 4),
                         "n_blocks": n, "n_errors": e})
    return pd.DataFrame(rows)


def waterfall(snr: np.ndarray, err: np.ndarray) -> np.ndarray:
    """(n,) bool: the blocks at the points with BLER in [1%, 90%] and at their neighbours."""
    pts = np.unique(snr)
    rate = np.array([err[snr == s].mean() for s in pts])
    inside = np.flatnonzero((rate >= 0.01) & (rate <= 0.9))
    if len(inside) == 0:
        inside = np.array([int(np.argmin(abs(rate - TARGET_BLER)))])
    return np.isin(snr, pts[max(inside.min() - 1, 0): inside.max() + 2])


def paired_fits(scenario: str, curves: list[dict], n_boot: int, seed: int, stream: int) -> dict[str, np.ndarray]:
    """``{method: (1 + n_boot,) SNR at 10% BLER (dB)}`` for the curves of one MCS: the logistic fit
    over each curve's waterfall, then its ``n_boot`` replicates, which reweight the blocks by how
    often a PDP bootstrap draws their test PDP. The draws (seeded by ``seed``, the scenario and
    ``stream``) are shared by every curve, so differences between methods are paired."""
    ids = np.unique(np.concatenate([r["pdp_index"] for r in curves]))
    rng = np.random.default_rng([seed, name_key(scenario), stream])
    counts = rng.multinomial(len(ids), np.full(len(ids), 1.0 / len(ids)), size=n_boot).astype(np.float64)
    fits = {}
    for r in curves:
        snr, err, pdp = (np.asarray(r[k]) for k in ("snr_db", "error", "pdp_index"))
        keep = waterfall(snr, err)
        w = np.vstack([np.ones((1, int(keep.sum()))), counts[:, np.searchsorted(ids, pdp[keep])]])
        fits[r["method"]] = fit_logistic(snr[keep], err[keep], w)
    return fits


def crossings(scenario: str, records: list[dict], n_boot: int, seed: int) -> dict:
    """``{method: {mcs: {snr_at_bler_10pct_db, ci_db, n_blocks, loss_vs_perfect_db, loss_ci_db}}}``,
    and for ``base`` / ``lora`` their paired SNR gain over the LMMSE with scenario statistics
    (``gain_vs_lmmse_stat_db``, ``gain_vs_lmmse_stat_ci_db``; positive: the learned one needs less)."""
    out: dict = {}
    for mcs in dict.fromkeys(r["mcs"] for r in records):
        curves = [r for r in records if r["mcs"] == mcs]
        fits = paired_fits(scenario, curves, n_boot, seed, stream=len(out))
        for r in curves:
            method, s = r["method"], fits[r["method"]]
            entry = {KEY: _db(s[0]), "ci_db": [_db(v) for v in stats.interval(s[1:])], "n_blocks": len(r["error"])}
            if "perfect" in fits and method != "perfect":
                d = s - fits["perfect"]
                entry["loss_vs_perfect_db"] = _db(d[0])
                entry["loss_ci_db"] = [_db(v) for v in stats.interval(d[1:])]
            if "lmmse_stat" in fits and method in ("base", "lora"):  # the learned vs the classical
                d = fits["lmmse_stat"] - s
                entry["gain_vs_lmmse_stat_db"] = _db(d[0])
                entry["gain_vs_lmmse_stat_ci_db"] = [_db(v) for v in stats.interval(d[1:])]
            out.setdefault(method, {})[mcs] = entry
    return out


def _db(x: float) -> float | None:
    """Rounded to 0.001 dB; None (JSON null) where there is no crossing."""
    return round(float(x), 3) if np.isfinite(x) else None


def table(summary: dict) -> pd.DataFrame:
    """The README table: one row per (scenario, mcs), one column per method (SNR at 10% BLER)."""
    rows = []
    for scenario, methods in summary.items():
        for mcs in dict.fromkeys(m for per in methods.values() for m in per):
            rows.append({"scenario": scenario, "mcs": mcs,
                         **{method: per[mcs][KEY] for method, per in methods.items() if mcs in per}})
    return pd.DataFrame(rows)
