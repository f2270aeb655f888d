"""The peers beside chanest's estimator on identical test samples: gaps and paired differences.

Each peer's evaluation part (``data/peers/eval/<peer>/<Scenario>.npz``: the peer's base, and on a
target its LoRA adapter, as ``<peer>`` and ``<peer>_lora``) was computed on the very samples of the
default pipeline's parts (``data/eval/base``, ``data/eval/lora``); :func:`compare` checks that and
puts them together, with the same PDP bootstrap as the main report (the same seed and scenario key,
so chanest's own numbers here equal those of ``reports/metrics.json``).

- ``gap_to_genie_db``: mean over SNR 0-30 dB of (method - genie LMMSE) NMSE in dB, as in the report;
- ``chanest_ahead_db``: mean over the same SNRs of (peer - chanest) NMSE in dB, paired, where
  chanest's model is the base for a peer's base and the LoRA adapter for a peer's adapter
  (> 0: chanest's estimator is ahead).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from chanest.channel.pdp import name_key
from chanest.errors import InputError
from chanest.evaluation import stats
from chanest.evaluation.report import GAP_SNR_DB, TestErrors

#: chanest's rows shown beside the peers (from the default pipeline's parts).
CHANEST = ("ls", "lmmse_stat", "nomp", "lmmse_genie", "base", "lora")


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


def compare(
    scenario: str,
    reference: TestErrors,
    own_lora: TestErrors | None,
    peers: dict[str, TestErrors],
    n_boot: int,
    seed: int,
) -> tuple[list[dict], dict]:
    """NMSE rows and metrics of one scenario: chanest's methods and every peer's.

    reference: the default pipeline's baselines and base on the scenario's full test set;
    own_lora: chanest's adapter on it (targets only); peers: peer name -> its part.
    """
    errors = {m: reference.errors[m] for m in CHANEST if m in reference.errors}
    if own_lora is not None:
        own_lora.check_same_samples(reference, f"chanest's adapter on {scenario}")
        errors["lora"] = own_lora.errors["lora"]
    pairs = {}
    for peer, part in peers.items():
        part.check_same_samples(reference, f"peer {peer} on {scenario}")
        for suffix, mine in (("", "base"), ("_lora", "lora")):
            if peer + suffix in part.errors:
                if mine not in errors:
                    raise InputError(f"peer {peer}{suffix} on {scenario}: chanest has no {mine} there")
                errors[peer + suffix] = part.errors[peer + suffix]
                pairs[peer + suffix] = mine
    paired = stats.PairedDB(reference.energy, reference.snr_db, reference.pdp_index, n_boot,
                            np.random.default_rng([seed, name_key(scenario)]))
    snrs = paired.snrs
    db = {m: paired(e) for m, e in errors.items()}
    rows, metrics = [], {}
    for m, d in db.items():
        half = np.diff(stats.interval(d[1:]), axis=-1)[:, 0] / 2
        for j, s in enumerate(snrs):
            at = reference.snr_db == s
            rows.append({"scenario": scenario, "method": m, "snr_db": float(s), "nmse_db": _r(d[0, j], 4),
                         "ci_db": _r(half[j], 4),
                         "nmse_agg_db": _r(10 * math.log10(errors[m][at].sum() / reference.energy[at].sum()), 4)})
        entry = {}
        entry["gap_to_genie_db"], entry["gap_to_genie_ci_db"] = stats.estimate(
            paired.mean_over(d - db["lmmse_genie"], GAP_SNR_DB))
        if m in pairs:
            entry["versus"] = pairs[m]
            entry["chanest_ahead_db"], entry["chanest_ahead_ci_db"] = stats.estimate(
                paired.mean_over(d - db[pairs[m]], GAP_SNR_DB))
        metrics[m] = entry
    return rows, metrics


def table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["scenario", "method", "snr_db", "nmse_db", "ci_db", "nmse_agg_db"])
