"""BLER curves: where a logistic fit of block errors vs SNR crosses the target BLER.

Used while simulating (to centre a curve's SNR points on its crossing, :mod:`chanest.studies.link`) and
for the report (:mod:`chanest.studies.link_report`, with a PDP bootstrap around it).
"""

from __future__ import annotations

import math

import numpy as np

#: Lattice of a curve's SNR points, dB.
SNR_STEP_DB = 0.5
#: The BLER whose SNR is reported.
TARGET_BLER = 0.1


def fit_logistic(snr_db: np.ndarray, error: np.ndarray, weights: np.ndarray, iters: int = 50,
                 ridge: float = 1e-2) -> np.ndarray:
    """SNR (dB) at which ``P(error) = sigmoid(a + b snr)`` crosses :data:`TARGET_BLER`, per row of
    ``weights`` (R, n) of the blocks (``snr_db``, ``error``: (n,)): binomial maximum likelihood by
    Newton's method, vectorised over rows, with a weak ridge (``ridge``) that keeps a separable
    resample finite. NaN where the fit does not decrease with SNR."""
    x = np.stack([np.ones_like(snr_db), snr_db - snr_db.mean()], axis=1)  # (n, 2), centred
    y = error.astype(np.float64)
    r = weights.shape[0]
    beta = np.zeros((r, 2))
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(beta @ x.T)))  # (R, n)
        g = (weights * (y - p)) @ x - ridge * beta  # (R, 2)
        w = weights * p * (1 - p)
        h = np.einsum("rn,ni,nj->rij", w, x, x) + ridge * np.eye(2)
        beta = beta + np.linalg.solve(h, g[..., None])[..., 0]
    a, b = beta[:, 0], beta[:, 1]
    logit = math.log(TARGET_BLER / (1 - TARGET_BLER))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (logit - a) / b + snr_db.mean()
    return np.where(b < 0, s, np.nan)
