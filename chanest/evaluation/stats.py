"""Confidence intervals that fit the test design: a bootstrap over PDPs (clusters).

A test set holds ``n_per_snr`` realisations at each SNR, drawn from a few hundred test PDPs, so
realisations that share a PDP (at one SNR or across SNRs) are not independent: a normal
approximation over realisations understates the uncertainty. Each bootstrap replicate here
resamples the *PDPs* with replacement; a realisation enters the replicate as often as its PDP was
drawn (a weight), and every statistic (per-SNR mean NMSE, the gap to the genie averaged over
SNRs, a paired gain between two methods) is recomputed on the same weights for every method.
So paired comparisons keep their pairing: the same realisations, the same resampled PDPs.

Point estimates are those of the full test set (all weights 1); intervals are the 2.5 and 97.5
percentiles of the replicates.
"""

from __future__ import annotations

import numpy as np

#: Two-sided coverage of every interval.
LEVEL = 0.95


def cluster_weights(clusters: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) float64 bootstrap weights of ``n`` samples grouped by ``clusters`` (n,) ids.

    Replicate ``b`` draws as many clusters as there are, uniformly with replacement; a sample's
    weight is the number of times its cluster was drawn.
    """
    ids, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    counts = rng.multinomial(len(ids), np.full(len(ids), 1.0 / len(ids)), size=n_boot)
    return counts.astype(np.float64)[:, inverse]  # cast per cluster, then spread over the samples


def snr_means_db(nmse: np.ndarray, snr_db: np.ndarray, snrs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean NMSE (linear, then dB) at each SNR: (R, len(snrs)) for (R, n) ``weights``.

    nmse: (n,) per-sample NMSE (linear); snr_db: (n,) each sample's SNR; snrs: the SNRs to report.
    """
    return _means_db(nmse, _split_by_snr(snr_db, snrs, weights), weights.shape[0])


def _split_by_snr(snr_db: np.ndarray, snrs: np.ndarray, weights: np.ndarray) -> list[tuple]:
    """Per SNR of ``snrs``: its samples (mask), their (R, n_s) weights and the weights' row sums."""
    parts = []
    for s in snrs:
        m = snr_db == s
        w = weights[:, m]
        parts.append((m, w, w.sum(axis=1)))
    return parts


def _means_db(nmse: np.ndarray, parts: list[tuple], rows: int) -> np.ndarray:
    """(rows, n_snr) dB of the weighted mean ``nmse`` at each SNR of ``parts`` (:func:`_split_by_snr`)."""
    out = np.empty((rows, len(parts)))
    for j, (m, w, total) in enumerate(parts):
        with np.errstate(divide="ignore", invalid="ignore"):  # no sample of s in a replicate: NaN
            out[:, j] = 10.0 * np.log10((w @ nmse[m]) / total)
    return out


def interval(replicates: np.ndarray) -> np.ndarray:
    """(..., 2) percentile interval ``[low, high]`` over axis 0 of ``replicates``.

    Replicates that are NaN (on a tiny test set a resample can miss every sample of an SNR) are
    left out.
    """
    tail = 100.0 * (1.0 - LEVEL) / 2.0
    return np.moveaxis(np.nanpercentile(replicates, [tail, 100.0 - tail], axis=0), 0, -1)


class PairedDB:
    """Methods' NMSE in dB at each SNR of one test set, on the full set and on ``n_boot`` PDP
    resamples, every method on the same weights: any difference of two methods is paired.

    energy, snr_db, pdp_index: (n,) of the test samples (``||H||^2``, SNR in dB, the PDP each came
    from); ``rng`` draws the resamples. ``self(err)`` for a method's (n,) squared errors returns
    (1 + n_boot, n_snr): row 0 the full test set, then the replicates, columns ``self.snrs``.
    """

    def __init__(self, energy: np.ndarray, snr_db: np.ndarray, pdp_index: np.ndarray, n_boot: int,
                 rng: np.random.Generator):
        self.energy, self.snr_db = energy, snr_db
        self.snrs = np.unique(snr_db)
        weights = np.vstack([np.ones((1, len(snr_db))), cluster_weights(pdp_index, n_boot, rng)])
        self.rows = weights.shape[0]
        self._parts = _split_by_snr(snr_db, self.snrs, weights)  # split once, shared by every method

    def __call__(self, err: np.ndarray) -> np.ndarray:
        return _means_db(err / self.energy, self._parts, self.rows)

    def mean_over(self, db: np.ndarray, snr_range_db: tuple[float, float]) -> np.ndarray:
        """(1 + n_boot,): the mean of (1 + n_boot, n_snr) ``db`` over the SNRs in ``snr_range_db``."""
        inside = (self.snrs >= snr_range_db[0]) & (self.snrs <= snr_range_db[1])
        return db[:, inside].mean(axis=1)


def estimate(replicates: np.ndarray, digits: int = 3) -> tuple[float, list[float]]:
    """``(value, [low, high])`` of (1 + n_boot,) ``replicates``: row 0 and the percentile interval
    of the others, rounded to ``digits`` (how every report prints a paired number)."""
    return round(float(replicates[0]), digits), [round(float(v), digits) for v in interval(replicates[1:])]
