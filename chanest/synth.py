"""Batched, exact OFDM channel synthesis from power-delay profiles (torch).

One realisation: pick a PDP, add a common delay offset ``tau0 ~ U[0, ofdm.max_delay_offset_s)``
to all its taps, draw the tap gains (Rayleigh, plus a specular first tap when the PDP has a
Rician K-factor), evaluate the exact frequency response on the used subcarriers

    H[k] = sum_l a_l exp(-j 2 pi f_k tau_l),    f_k = k * ofdm.subcarrier_spacing_hz,

normalise it, and observe it at the DMRS pilots through AWGN (unit-modulus pilots, so the LS
estimate is ``H[pilots] + CN(0, noise_var)``).

Speed: ``exp(-j 2 pi k df tau)`` with ``k = k1 * M + k2`` factorises into
``exp(-j 2 pi k1 M df tau) * exp(-j 2 pi k2 df tau)``, so the tap sum over the whole band is one
batched complex matmul ``(B, K1, L) @ (B, L, M)`` of two small phase tables (the gains folded
into the second). The tables themselves are outer products of two still smaller tables, so only
about ``4 sqrt(sqrt(n_sc))`` sines and cosines are evaluated per tap. Phases are reduced modulo
one cycle in float64 before anything is rounded to float32, so the result is exact to float32
rounding (NMSE of the error about -120 dB) for any delay and bandwidth.

Units and shapes: delays in seconds, powers linear, frequencies in Hz; ``B`` is the batch,
``L`` the (padded) tap count, ``n_sc`` the used subcarriers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from chanest.ofdm import OFDMConfig
from chanest.pdp import PDP, PDPSet

#: The supported normalisations of the synthesised channel (see :class:`ChannelSampler`).
NORMALISATIONS: tuple[str, ...] = ("realisation", "pdp")

_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def nmse(h_est: Tensor, h: Tensor) -> Tensor:
    """(B,) per-sample normalised squared error ``||h_est - h||^2 / ||h||^2`` (linear).

    h_est, h: (B, n) complex (or real) tensors of the same shape.
    """
    err = torch.linalg.vector_norm(h_est - h, dim=-1) ** 2
    return err / torch.linalg.vector_norm(h, dim=-1) ** 2


def db(x: Tensor | np.ndarray | float) -> Tensor | np.ndarray | float:
    """``10 log10(x)`` for a linear power ratio (tensor, array or float)."""
    if isinstance(x, Tensor):
        return 10.0 * torch.log10(x)
    if isinstance(x, np.ndarray):
        return 10.0 * np.log10(x)
    return 10.0 * math.log10(x)


# --------------------------------------------------------------------------------------------
# Exact tap sums on a regular frequency grid
# --------------------------------------------------------------------------------------------


def grid_split(n: int) -> tuple[int, int]:
    """Split ``n`` grid points into ``(n_coarse, n_fine)`` with ``n_coarse * n_fine >= n``.

    An exact divisor near ``sqrt(n)`` is preferred (no padding); else ``ceil(sqrt(n))``.
    """
    if n < 1:
        raise ValueError(f"grid_split: need n >= 1, got {n}")
    root = math.sqrt(n)
    divisors = [m for m in range(max(1, int(root / 2)), int(2 * root) + 1) if n % m == 0]
    fine = min(divisors, key=lambda m: abs(m - root)) if divisors else math.ceil(root)
    return -(-n // fine), fine


def _cis(cycles: Tensor, real_dtype: torch.dtype) -> Tensor:
    """``exp(-j 2 pi cycles)``; ``cycles`` float64, reduced modulo 1 here before rounding."""
    angle = torch.frac(cycles).to(real_dtype).mul_(-2.0 * math.pi)
    return torch.complex(torch.cos(angle), torch.sin(angle))


def _cis_range(x: Tensor, n: int, real_dtype: torch.dtype) -> Tensor:
    """(..., n) table ``exp(-j 2 pi k x)`` for ``k = 0 .. n-1``; ``x`` (...,) float64 cycles.

    Built as the outer product of two tables of about ``sqrt(n)`` entries each (few sines).
    """
    n_coarse, n_fine = grid_split(n)
    ramp = torch.arange(max(n_coarse, n_fine), dtype=torch.float64, device=x.device)
    fine = _cis(x[..., None] * ramp[:n_fine], real_dtype)
    coarse = _cis(torch.frac(x * n_fine)[..., None] * ramp[:n_coarse], real_dtype)
    table = (coarse[..., :, None] * fine[..., None, :]).flatten(-2)
    return table if n_coarse * n_fine == n else table[..., :n]


def _tables(
    delays_s: Tensor, step_hz: float, start_hz: float, n: int, real_dtype: torch.dtype
) -> tuple[Tensor, Tensor, int, int]:
    """Phase tables of ``exp(-j 2 pi (start + (k1 M + k2) step) tau)``: (B, L, K1) and (B, L, M)."""
    n_coarse, n_fine = grid_split(n)
    tau = delays_s.to(torch.float64)
    x = torch.frac(tau * step_hz)  # cycles per grid step, in [0, 1)
    coarse = _cis_range(torch.frac(x * n_fine), n_coarse, real_dtype)
    if start_hz:
        coarse = coarse * _cis(tau * start_hz, real_dtype)[..., None]
    fine = _cis_range(x, n_fine, real_dtype)
    return coarse, fine, n_coarse, n_fine


def tap_response(
    delays_s: Tensor, gains: Tensor, step_hz: float, n: int, start_hz: float = 0.0
) -> Tensor:
    """Exact frequency response of tapped delay lines on a regular grid.

    ``out[b, k] = sum_l gains[b, l] exp(-j 2 pi (start_hz + k step_hz) delays_s[b, l])``.

    delays_s: (B, L) seconds (any float dtype; phases are formed in float64).
    gains:    (B, L) complex64 or complex128 (sets the output dtype).
    Returns (B, n) of ``gains.dtype``. Zero gains (padded taps) contribute nothing.
    """
    real_dtype = _REAL[gains.dtype]
    coarse, fine, n_coarse, n_fine = _tables(delays_s, step_hz, start_hz, n, real_dtype)
    out = torch.bmm(coarse.transpose(1, 2), fine * gains[..., None])  # (B, K1, M)
    out = out.reshape(gains.shape[0], n_coarse * n_fine)
    return out if n_coarse * n_fine == n else out[:, :n].contiguous()


def tap_correlate(delays_s: Tensor, y: Tensor, step_hz: float, start_hz: float = 0.0) -> Tensor:
    """Adjoint of :func:`tap_response`: ``out[b, l] = sum_k conj(V[b, k, l]) y[b, k]``.

    ``V[b, k, l] = exp(-j 2 pi (start_hz + k step_hz) delays_s[b, l])``.
    delays_s: (B, L) seconds; y: (B, n) complex64/complex128. Returns (B, L) of ``y.dtype``.
    """
    batch, n = y.shape
    real_dtype = _REAL[y.dtype]
    coarse, fine, n_coarse, n_fine = _tables(delays_s, step_hz, start_hz, n, real_dtype)
    if n_coarse * n_fine != n:
        y = torch.nn.functional.pad(y, (0, n_coarse * n_fine - n))
    grid = y.reshape(batch, n_coarse, n_fine)
    partial = torch.bmm(coarse.conj(), grid)  # (B, L, M)
    return (partial * fine.conj()).sum(-1)


def dirichlet_gram(delays_s: Tensor, step_hz: float, n: int, start_hz: float = 0.0) -> Tensor:
    """(B, L, L) complex128 Gram matrix ``V^H V`` of the grid steering matrix, in closed form.

    ``V[k, l] = exp(-j 2 pi (start_hz + k step_hz) tau_l)``, ``k = 0 .. n-1``, so
    ``G[l, m] = sum_k exp(+j 2 pi (start + k step) (tau_l - tau_m))`` (a Dirichlet kernel),
    evaluated in float64 with the per-step phase reduced to [-1/2, 1/2) for exactness.
    """
    tau = delays_s.to(torch.float64)
    dtau = tau[..., :, None] - tau[..., None, :]
    u = dtau * step_hz
    r = u - torch.round(u)  # k is an integer, so only the fractional cycles matter
    zero = r == 0
    safe = torch.where(zero, torch.ones_like(r), r)
    ratio = torch.sin(math.pi * n * safe) / torch.sin(math.pi * safe)
    ratio = torch.where(zero, torch.full_like(r, float(n)), ratio)
    phase = math.pi * (n - 1) * r + 2.0 * math.pi * torch.frac(dtau * start_hz)
    return torch.polar(ratio, phase)


# --------------------------------------------------------------------------------------------
# The sampler
# --------------------------------------------------------------------------------------------


@dataclass
class ChannelBatch:
    """A batch of synthesised channels and their pilot observations.

    h:         (B, n_sc) complex64 true frequency response on the used subcarriers.
    h_ls:      (B, n_pilots) complex64 LS estimate at the pilots (received / known pilot).
    snr_db:    (B,) float32 SNR per resource element, dB.
    noise_var: (B,) float32 noise variance per resource element, in the units of ``h``.
    pdp_index: (B,) int64 index into the sampler's :class:`PDPSet`.
    delays_s:  (B, L) float64 tap delays in seconds, including the sample's common delay offset.
    powers:    (B, L) float32 prior variances of the tap gains of ``h`` (linear; 0 on padded
               taps); see :class:`ChannelSampler` for how they are scaled.
    gains:     (B, L) complex64 the drawn tap gains, after normalisation: ``h`` is exactly
               ``tap_response(delays_s, gains, subcarrier_spacing_hz, n_sc)``.
    """

    h: Tensor
    h_ls: Tensor
    snr_db: Tensor
    noise_var: Tensor
    pdp_index: Tensor
    delays_s: Tensor
    powers: Tensor
    gains: Tensor

    def __len__(self) -> int:
        return int(self.h.shape[0])


class ChannelSampler:
    """Draws batches of channel realisations from a :class:`PDPSet`, all on ``device``.

    Tap gains: ``a_l ~ CN(0, p_l)``; when the PDP's K-factor ``K > 0`` the first tap is
    ``sqrt(K / (K + 1) * sum p) exp(j phi) + CN(0, max(p_0 - K / (K + 1) * sum p, 0))`` with
    ``phi ~ U[0, 2 pi)``. The tap second moments ``E|a_l|^2`` (``p_l``, and
    ``K / (K + 1) sum p + max(...)`` for a specular first tap) are scaled to unit sum.

    normalisation:
      - ``"realisation"`` (default, the research code's convention): each realisation is scaled
        to ``mean_k |H[k]|^2 = 1`` over the band, so the SNR holds per realisation. ``powers``
        are then the unit-sum second moments above: an approximation of the prior of the
        normalised gains (exact only on average, since the per-realisation scale is random).
      - ``"pdp"``: the PDP is scaled to unit total power, ``E|H[k]|^2 = 1`` on average, and
        ``powers`` are exactly the prior variances of the tap gains (the specular first tap is
        not Gaussian; its variance is still its second moment).

    Noise: ``noise_var = 10^(-snr_db / 10)`` per resource element; pilots have unit modulus.
    """

    def __init__(
        self,
        pdps: PDPSet,
        ofdm: OFDMConfig,
        normalisation: str = "realisation",
        device: torch.device | str = "cpu",
    ):
        if normalisation not in NORMALISATIONS:
            raise ValueError(
                f"normalisation must be one of {', '.join(NORMALISATIONS)}, got {normalisation!r}"
            )
        if len(pdps) == 0:
            raise ValueError("ChannelSampler: the PDP set is empty")
        self.pdps = pdps
        self.ofdm = ofdm
        self.normalisation = normalisation
        self.device = torch.device(device)

        powers = np.asarray(pdps.powers, dtype=np.float64)
        powers = powers / powers.sum(axis=1, keepdims=True)
        k = np.asarray(pdps.k_factor, dtype=np.float64)
        specular = k / (k + 1.0)  # specular power of the first tap (PDP of unit sum)
        diffuse = powers.copy()
        diffuse[:, 0] = np.maximum(powers[:, 0] - specular, 0.0)
        second = diffuse.copy()
        second[:, 0] += specular
        total = second.sum(axis=1, keepdims=True)

        def put(a: np.ndarray, dtype: torch.dtype) -> Tensor:
            return torch.as_tensor(a, dtype=dtype).to(self.device)

        self._delays = put(pdps.delays_s, torch.float64)
        self._diffuse_std = put(np.sqrt(diffuse / total), torch.float32)
        self._specular_amp = put(np.sqrt(specular / total[:, 0]), torch.float32)
        self._prior = put(second / total, torch.float32)
        self._has_specular = bool(np.any(k > 0))
        self.n_taps = int(pdps.delays_s.shape[1])

    def __len__(self) -> int:
        return len(self.pdps)

    def sample(
        self,
        batch_size: int,
        snr_db: float | tuple[float, float] | Tensor,
        generator: torch.Generator,
        index: Tensor | None = None,
    ) -> ChannelBatch:
        """Draw ``batch_size`` realisations; every random number comes from ``generator``.

        snr_db: a float (the same SNR for all), a ``(lo, hi)`` tuple (uniform in dB per sample)
            or a (B,) tensor. index: optional (B,) int64 PDP indices (else drawn uniformly).
        The same generator state gives the identical batch. Random numbers are drawn on the
        generator's device and moved to the sampler's device if that differs.
        """
        ofdm, dev, b = self.ofdm, self.device, int(batch_size)
        gdev = generator.device
        if index is None:
            index = torch.randint(len(self), (b,), generator=generator, device=gdev)
        elif index.shape != (b,):
            raise ValueError(f"index: expected shape ({b},), got {tuple(index.shape)}")
        offset = torch.rand(b, dtype=torch.float64, generator=generator, device=gdev)
        gains = torch.randn(b, self.n_taps, dtype=torch.complex64, generator=generator, device=gdev)
        phi = (
            torch.rand(b, generator=generator, device=gdev) * (2.0 * math.pi)
            if self._has_specular
            else None
        )
        snr = self._snr(snr_db, b, generator)
        noise = torch.randn(
            b, ofdm.n_pilots, dtype=torch.complex64, generator=generator, device=gdev
        )

        index, offset, gains, snr, noise = (
            t.to(dev) for t in (index.to(torch.int64), offset, gains, snr, noise)
        )
        delays = self._delays[index] + (offset * ofdm.max_delay_offset_s)[:, None]
        gains = gains * self._diffuse_std[index]
        if phi is not None:
            specular = self._specular_amp[index] * torch.polar(torch.ones_like(phi), phi.to(dev))
            gains[:, 0] += specular

        h = tap_response(delays, gains, ofdm.subcarrier_spacing_hz, ofdm.n_subcarriers)
        if self.normalisation == "realisation":
            rms = torch.linalg.vector_norm(torch.view_as_real(h).flatten(1), dim=1)
            scale = math.sqrt(ofdm.n_subcarriers) / rms  # to mean_k |H[k]|^2 = 1
            h.mul_(scale[:, None])
            gains = gains * scale[:, None]
        noise_var = torch.pow(10.0, -snr / 10.0)
        h_ls = h[:, ofdm.pilot_offset :: ofdm.pilot_spacing] + noise * noise_var.sqrt()[:, None]
        return ChannelBatch(
            h=h,
            h_ls=h_ls,
            snr_db=snr,
            noise_var=noise_var,
            pdp_index=index,
            delays_s=delays,
            powers=self._prior[index],
            gains=gains,
        )

    def _snr(
        self, snr_db: float | tuple[float, float] | Tensor, b: int, generator: torch.Generator
    ) -> Tensor:
        """(b,) float32 SNR in dB on the generator's device (a draw only for a range)."""
        gdev = generator.device
        if isinstance(snr_db, Tensor):
            if snr_db.shape != (b,):
                raise ValueError(f"snr_db: expected shape ({b},), got {tuple(snr_db.shape)}")
            return snr_db.to(device=gdev, dtype=torch.float32)
        if isinstance(snr_db, tuple):
            lo, hi = (float(v) for v in snr_db)
            return lo + (hi - lo) * torch.rand(b, generator=generator, device=gdev)
        return torch.full((b,), float(snr_db), device=gdev)


# --------------------------------------------------------------------------------------------
# Synthetic PDPs (tests, benchmarks, a fallback when no real PDP files are around)
# --------------------------------------------------------------------------------------------


def exponential_pdp_set(
    n: int,
    n_taps: int,
    rms_delay_s: float | tuple[float, float],
    rng: np.random.Generator,
    k_factor: float = 0.0,
    scenario: str = "synthetic",
) -> PDPSet:
    """``n`` exponential PDPs of ``n_taps`` taps each, every one normalised to unit sum.

    Per PDP a decay constant ``ds`` (seconds; fixed, or uniform in a ``(lo, hi)`` range), a first
    tap at 0 and the others at sorted ``U[0, 5 ds)`` delays, powers ``exp(-tau / ds)``.
    """
    lo, hi = rms_delay_s if isinstance(rms_delay_s, tuple) else (rms_delay_s, rms_delay_s)
    ds = rng.uniform(lo, hi, size=(n, 1))
    delays = np.sort(rng.uniform(0.0, 5.0, size=(n, n_taps)), axis=1) * ds
    delays[:, 0] = 0.0
    powers = np.exp(-delays / ds)
    pdps = [
        PDP(delays[i], powers[i] / powers[i].sum(), float(k_factor)) for i in range(n)
    ]
    return PDPSet.from_pdps(scenario, pdps)


# --------------------------------------------------------------------------------------------
# The per-sample reference (the research code's approach), for the benchmark and tests
# --------------------------------------------------------------------------------------------


def reference_synthesis_numpy(
    pdp: PDP | PDPSet,
    ofdm: OFDMConfig,
    snr_db: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One realisation the way the research code made it: slow, per sample, numpy.

    Picks a PDP uniformly if given a :class:`PDPSet`; adds a common delay offset
    ``U[0, ofdm.max_delay_offset_s)``; draws the tap gains (as :class:`ChannelSampler`); builds
    the time-domain impulse response on the ``fft_size`` grid (sample period
    ``1 / (fft_size * df)``) by sinc interpolation of each tap in turn (on the circular grid, so
    a tap near 0 keeps its precursor tail); FFTs to ``fft_size`` bins; keeps ``n_subcarriers``
    bins centred on DC (a fixed frequency shift of the ``k * df`` grid, i.e. one phase per tap,
    which leaves the statistics unchanged); normalises ``mean |H|^2 = 1``; adds noise at the
    pilots.

    Returns ``(h, h_ls, noise_var)``: (n_sc,) complex128, (n_pilots,) complex128, float.
    """
    if isinstance(pdp, PDPSet):
        pdp = pdp.pdp(int(rng.integers(len(pdp))))
    n_fft, df = ofdm.fft_size, ofdm.subcarrier_spacing_hz
    powers = pdp.powers / pdp.powers.sum()
    delays = pdp.delays_s + rng.uniform(0.0, ofdm.max_delay_offset_s)
    gains = np.sqrt(powers / 2.0) * (
        rng.standard_normal(pdp.n_taps) + 1j * rng.standard_normal(pdp.n_taps)
    )
    if pdp.k_factor > 0:
        specular = pdp.k_factor / (pdp.k_factor + 1.0)
        diffuse = np.sqrt(max(powers[0] - specular, 0.0) / 2.0)
        gains[0] = np.sqrt(specular) * np.exp(2j * np.pi * rng.uniform()) + diffuse * (
            rng.standard_normal() + 1j * rng.standard_normal()
        )
    sample_period = 1.0 / (n_fft * df)
    n = np.arange(n_fft)
    impulse = np.zeros(n_fft, dtype=np.complex128)
    for gain, tau in zip(gains, delays):
        lag = (n - tau / sample_period + n_fft / 2) % n_fft - n_fft / 2
        impulse += gain * np.sinc(lag)
    spectrum = np.fft.fft(impulse)
    h = spectrum[(np.arange(ofdm.n_subcarriers) - ofdm.n_subcarriers // 2) % n_fft]
    h = h / np.sqrt(np.mean(np.abs(h) ** 2))
    noise_var = 10.0 ** (-snr_db / 10.0)
    n_p = ofdm.n_pilots
    noise = np.sqrt(noise_var / 2.0) * (rng.standard_normal(n_p) + 1j * rng.standard_normal(n_p))
    return h, h[ofdm.pilot_indices] + noise, noise_var
