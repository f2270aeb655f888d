"""The FR2 link report: SNR at 10% BLER per method with paired differences against references.

As :func:`chanest.studies.link_report.crossings` (:func:`~chanest.studies.link_report.paired_fits`:
a logistic fit over each curve's waterfall, a PDP bootstrap shared by all curves of an MCS, so
differences are paired), with the difference of every method against each of :data:`REFERENCES`
(perfect CSI, LS + linear and NOMP), and, where a curve never reaches 10% BLER, its **floor**: the
BLER at its highest simulated SNR, with the number of blocks behind it.
"""

from __future__ import annotations

import numpy as np

from chanest.evaluation import stats
from chanest.studies.link_report import KEY, paired_fits

#: Differences reported for every method: ``loss_vs_perfect_db`` (method minus perfect CSI: the
#: SNR the estimator costs), ``gain_vs_ls_db`` and ``gain_vs_nomp_db`` (LS + linear's or NOMP's
#: SNR minus the method's: what it saves over them).
REFERENCES = {"perfect": ("loss_vs_perfect", 1.0), "ls": ("gain_vs_ls", -1.0), "nomp": ("gain_vs_nomp", -1.0)}


def _db(x: float) -> float | None:
    """Rounded to 0.001 dB (never -0.0); None (JSON null) where there is no crossing."""
    return round(float(x), 3) + 0.0 if np.isfinite(x) else None


def summarise(scenario: str, records: list[dict], n_boot: int, seed: int) -> dict:
    """``{method: {mcs: {snr_at_bler_10pct_db, ci_db, n_blocks, <ref>_db, <ref>_ci_db, ...,
    floor_bler, floor_snr_db, floor_blocks}}}`` for one target's curve records."""
    out: dict = {}
    for i, mcs in enumerate(dict.fromkeys(r["mcs"] for r in records)):
        curves = [r for r in records if r["mcs"] == mcs]
        fits = paired_fits(scenario, curves, n_boot, seed, stream=i)
        for r in curves:
            method, s = r["method"], fits[r["method"]]
            snr, err = np.asarray(r["snr_db"]), np.asarray(r["error"])
            entry = {KEY: _db(s[0]), "ci_db": [_db(v) for v in stats.interval(s[1:])], "n_blocks": len(err)}
            for ref, (name, sign) in REFERENCES.items():
                if ref in fits and method != ref:
                    d = sign * (s - fits[ref])
                    entry[f"{name}_db"] = _db(d[0])
                    entry[f"{name}_ci_db"] = [_db(v) for v in stats.interval(d[1:])]
            top = snr.max()
            if not np.isfinite(s[0]):  # no crossing: the curve floors above 10% BLER
                entry |= {"floor_bler": round(float(err[snr == top].mean()), 4), "floor_snr_db": float(top),
                          "floor_blocks": int((snr == top).sum())}
            out.setdefault(method, {})[mcs] = entry
    return out
