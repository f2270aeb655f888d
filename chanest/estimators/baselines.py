"""Classical channel estimators, batched in torch: LS + linear interpolation, LMMSE, genie LMMSE.

All take the LS estimates at the DMRS pilots, ``h_ls`` (B, n_pilots) complex, and return the
channel on every used subcarrier, (B, n_sc) complex64 (or complex128 for complex128 input).
Noise variances are per resource element, in the units of ``h`` (``noise_var = 10^(-snr/10)``
for unit-energy channels); delays are in seconds, powers linear.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import PDPSet
from chanest.channel.response import dirichlet_gram, tap_correlate, tap_response

# --------------------------------------------------------------------------------------------
# LS + linear interpolation
# --------------------------------------------------------------------------------------------


def ls_linear(h_ls: Tensor, ofdm: OFDMConfig) -> Tensor:
    """LS at the pilots, linearly interpolated across subcarriers.

    Subcarriers outside the first/last pilot are extrapolated linearly from the two nearest
    pilots (a single pilot gives a flat estimate). h_ls: (B, n_pilots) complex.
    Returns (B, n_sc) of ``h_ls.dtype``.
    """
    n_p, sp = ofdm.n_pilots, ofdm.pilot_spacing
    if h_ls.shape[-1] != n_p:
        raise ValueError(f"h_ls: expected {n_p} pilots, got shape {tuple(h_ls.shape)}")
    if n_p == 1:
        return h_ls.expand(*h_ls.shape[:-1], ofdm.n_subcarriers).clone()
    k = torch.arange(ofdm.n_subcarriers, device=h_ls.device, dtype=torch.float64)
    pos = (k - ofdm.pilot_offset) / sp  # position in pilot units
    left = pos.floor().clamp(0, n_p - 2).to(torch.int64)
    t = (pos - left).to(_real(h_ls.dtype))
    lo, hi = h_ls[..., left], h_ls[..., left + 1]
    return lo + (hi - lo) * t


def _real(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.complex128 else torch.float32


# --------------------------------------------------------------------------------------------
# Statistical LMMSE (covariance averaged over a PDP set and the delay offset)
# --------------------------------------------------------------------------------------------


def offset_characteristic(lags: Tensor, spacing_hz: float, max_offset_s: float) -> Tensor:
    """``E[exp(-j 2 pi d df tau0)]`` for ``tau0 ~ U[0, T)``: ``exp(-j pi d df T) sinc(d df T)``.

    lags: integer subcarrier lags ``d`` (any shape). Returns complex128 of that shape.
    """
    x = lags.to(torch.float64) * (spacing_hz * max_offset_s)
    return torch.polar(torch.sinc(x), -math.pi * x)


def band_correlation(pdps: PDPSet, ofdm: OFDMConfig, chunk: int = 256) -> Tensor:
    """(n_sc,) complex128 ``r[d] = E[H[k + d] H[k]^*]`` averaged over the PDPs and the offset.

    Each PDP is normalised to unit sum (with its specular first tap, if any, counted at its
    second moment ``max(p_0, K / (K + 1))``), so ``r[0] = 1``.
    """
    powers = np.asarray(pdps.powers, dtype=np.float64)
    powers = powers / powers.sum(axis=1, keepdims=True)
    k = np.asarray(pdps.k_factor, dtype=np.float64)
    powers[:, 0] = np.maximum(powers[:, 0], k / (k + 1.0))
    powers = powers / powers.sum(axis=1, keepdims=True)
    delays = torch.as_tensor(pdps.delays_s, dtype=torch.float64)
    gains = torch.as_tensor(powers, dtype=torch.complex128)
    n_sc, df = ofdm.n_subcarriers, ofdm.subcarrier_spacing_hz
    total = torch.zeros(n_sc, dtype=torch.complex128)
    for i in range(0, len(pdps), chunk):
        # sum_l p_l exp(-j 2 pi d df tau_l) is E[H[k + d] H[k]^*] for one PDP
        total += tap_response(delays[i : i + chunk], gains[i : i + chunk], df, n_sc).sum(0)
    lags = torch.arange(n_sc)
    return total / len(pdps) * offset_characteristic(lags, df, ofdm.max_delay_offset_s)


class StatLMMSE:
    """LMMSE with a fixed band covariance R: ``h = R_hp (R_pp + s I)^-1 h_ls``.

    R (n_sc x n_sc, Hermitian Toeplitz) is averaged over a (training) PDP set and the uniform
    common delay offset; built by :meth:`from_pdps` (no state dict: rebuild it from the PDPs).
    R_pp is eigendecomposed once, ``R_pp = U diag(lam) U^H``, so that for every sample's own
    noise variance ``s``: ``W(s) = (R_hp U) diag(1 / (lam + s)) U^H``. Eigenvalues below
    ``rel_floor * max(lam)`` are dropped (their contribution is below that fraction).
    """

    def __init__(
        self,
        correlation: Tensor,
        ofdm: OFDMConfig,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.complex64,
        rel_floor: float = 1e-10,
    ):
        """correlation: (n_sc,) ``r[d] = E[H[k + d] H[k]^*]`` (see :func:`band_correlation`)."""
        n_sc = ofdm.n_subcarriers
        r = correlation.to(torch.complex128).cpu()
        if r.shape != (n_sc,):
            raise ValueError(f"correlation: expected shape ({n_sc},), got {tuple(r.shape)}")
        self.ofdm = ofdm
        self.correlation = r  # (n_sc,) complex128, on the CPU
        pilots = torch.as_tensor(ofdm.pilot_indices)
        r_hp = self._toeplitz(torch.arange(n_sc), pilots)  # (n_sc, n_p)
        lam, u = torch.linalg.eigh(r_hp[pilots])
        keep = lam > rel_floor * lam.max()
        lam, u = lam[keep], u[:, keep]
        self.eigenvalues = lam.to(device)  # (rank,) float64
        self._project = u.conj().to(device=device, dtype=dtype)  # y @ U^* = (U^H y)^T
        self._expand = (r_hp @ u).T.contiguous().to(device=device, dtype=dtype)  # (R_hp U)^T

    def _toeplitz(self, rows: Tensor, cols: Tensor) -> Tensor:
        """Entries ``R[k, k'] = r[k - k']`` (``r[-d] = conj(r[d])``) for the given indices."""
        lag = rows[:, None] - cols[None, :]
        values = self.correlation[lag.abs()]
        return torch.where(lag >= 0, values, values.conj())

    def covariance(self) -> Tensor:
        """(n_sc, n_sc) complex128 band covariance R (built on demand, on the CPU)."""
        k = torch.arange(self.ofdm.n_subcarriers)
        return self._toeplitz(k, k)

    @classmethod
    def from_pdps(
        cls,
        pdps: PDPSet,
        ofdm: OFDMConfig,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.complex64,
    ) -> StatLMMSE:
        """The LMMSE for channels drawn from ``pdps`` (see :func:`band_correlation`)."""
        return cls(band_correlation(pdps, ofdm), ofdm, device=device, dtype=dtype)

    @property
    def rank(self) -> int:
        return int(self.eigenvalues.shape[0])

    def __call__(self, h_ls: Tensor, noise_var: Tensor | float) -> Tensor:
        """h_ls: (B, n_pilots) complex; noise_var: (B,) or scalar. Returns (B, n_sc)."""
        dtype = self._project.dtype
        s = torch.as_tensor(noise_var, dtype=torch.float64, device=h_ls.device).reshape(-1, 1)
        z = h_ls.to(dtype) @ self._project  # (B, rank)
        z = z * (1.0 / (self.eigenvalues + s)).to(_real(dtype))
        return (z @ self._expand).to(h_ls.dtype)


# --------------------------------------------------------------------------------------------
# Genie LMMSE (each sample's own taps)
# --------------------------------------------------------------------------------------------


def _genie_system(
    delays_s: Tensor, powers: Tensor, noise_var: Tensor | float, ofdm: OFDMConfig
) -> tuple[Tensor, Tensor, Tensor]:
    """``D = sqrt(P)`` (B, L), ``M^-1`` (B, L, L) for ``M = I + D V_p^H V_p D / s``, and ``s``.

    Uses ``(P^-1 + V_p^H V_p / s)^-1 = D M^-1 D``: with padded taps of zero power, D zeroes
    their rows and columns and M stays >= I (condition number at most ``1 + n_p sum p / s``),
    all in complex128. M^-1 comes from its Cholesky factor (``cholesky_inverse``): batched
    triangular solves with several right-hand sides were measured 1000x slower on the CPU.
    """
    tau = delays_s.to(torch.float64)
    d = powers.to(torch.float64).clamp_min(0.0).sqrt()
    s = torch.as_tensor(noise_var, dtype=torch.float64, device=tau.device)
    s = s.expand(tau.shape[0]).reshape(-1, 1, 1)
    sp_hz = ofdm.pilot_spacing * ofdm.subcarrier_spacing_hz
    start_hz = ofdm.pilot_offset * ofdm.subcarrier_spacing_hz
    gram = dirichlet_gram(tau, sp_hz, ofdm.n_pilots, start_hz)  # V_p^H V_p
    m = d[:, :, None] * gram * d[:, None, :] / s
    m = m + torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
    return d, torch.cholesky_inverse(torch.linalg.cholesky(m)), s


def genie_lmmse(
    h_ls: Tensor, delays_s: Tensor, powers: Tensor, noise_var: Tensor | float, ofdm: OFDMConfig
) -> Tensor:
    """LMMSE with each sample's own tap delays and powers (the MMSE bound for Gaussian taps).

    Tap-domain form: ``a_hat = C V_p^H y / s``, ``C = (P^-1 + V_p^H V_p / s)^-1``,
    ``H_hat = V a_hat``, with ``V = exp(-j 2 pi f_k tau)``. L x L work per sample, complex128.
    h_ls: (B, n_pilots) complex; delays_s: (B, L) seconds incl. the delay offset;
    powers: (B, L) linear prior variances (0 on padded taps); noise_var: (B,) or scalar.
    Returns (B, n_sc) of ``h_ls.dtype``.
    """
    d, m_inv, s = _genie_system(delays_s, powers, noise_var, ofdm)
    df = ofdm.subcarrier_spacing_hz
    rhs = tap_correlate(
        delays_s, h_ls.to(torch.complex128), ofdm.pilot_spacing * df, ofdm.pilot_offset * df
    )  # V_p^H y
    rhs = d * rhs / s[:, :, 0]
    taps = d * torch.bmm(m_inv, rhs[..., None])[..., 0]
    return tap_response(delays_s, taps, df, ofdm.n_subcarriers).to(h_ls.dtype)


def genie_nmse_analytic(
    delays_s: Tensor, powers: Tensor, noise_var: Tensor | float, ofdm: OFDMConfig
) -> Tensor:
    """(B,) expected NMSE of :func:`genie_lmmse`: ``tr(C V^H V) / (n_sc sum p)`` (linear).

    Exact for Gaussian taps with variances ``powers`` (no per-realisation normalisation).
    """
    d, m_inv, _ = _genie_system(delays_s, powers, noise_var, ofdm)
    band = dirichlet_gram(delays_s, ofdm.subcarrier_spacing_hz, ofdm.n_subcarriers)  # V^H V
    # C = D M^-1 D; tr(C G) = tr(M^-1 D G D) = sum_ij (M^-1)_ij (D G D)_ji
    dgd = d[:, :, None] * band * d[:, None, :]
    trace = (m_inv * dgd.transpose(1, 2)).sum(dim=(1, 2)).real
    return trace / (ofdm.n_subcarriers * powers.to(torch.float64).sum(-1))
