"""Batched, exact OFDM channel synthesis from power-delay profiles (torch).

One realisation: pick a PDP, add a common delay offset ``tau0 ~ U[0, ofdm.max_delay_offset_s)``
to all its taps, draw the tap gains (Rayleigh, plus a specular first tap when the PDP has a
Rician K-factor), evaluate the exact frequency response on the used subcarriers

    H[k] = sum_l a_l exp(-j 2 pi f_k tau_l),    f_k = k * ofdm.subcarrier_spacing_hz,

normalise it, and observe it at the DMRS pilots through AWGN (unit-modulus pilots, so the LS
estimate is ``H[pilots] + CN(0, noise_var)``).

Speed (this is the training hot path; each choice below was measured on 2 CPU cores):

- ``exp(-j 2 pi k df tau)`` with ``k = k1 * M + k2`` factorises into
  ``exp(-j 2 pi k1 M df tau) * exp(-j 2 pi k2 df tau)``, so the tap sum over the whole band is
  one batched complex matmul ``(B, K1, L) @ (B, L, M)`` of two small phase tables (the gains
  folded into the second). The tables are themselves outer products of two smaller tables, so
  only about ``4 n_sc^(1/4)`` sines and cosines are evaluated per tap.
- Phases are reduced modulo one cycle in float64 before anything is rounded to float32, so the
  result is exact to float32 rounding (NMSE of the error about -120 dB) for any delay and band.
- The per-realisation normalisation is computed from the taps, ``||H||^2 = g^H G g`` with the
  closed-form Gram matrix ``G`` (precomputed per PDP), and folded into the gains: no pass over H.
- On the CPU, taps beyond the 90th percentile of the tap count are summed separately for the
  few samples that have them, instead of multiplying padding for every sample.
- What remains is mostly the batched matmul and the pilot noise (the largest random draw:
  torch's CPU generator is serial, about 3 ns a number; drawing it in two halves on two threads
  from child generators gained nothing measurable here and was dropped).

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

    An exact divisor in ``[sqrt(n), 2 sqrt(n)]`` is preferred (no padding); else
    ``ceil(sqrt(n))``.
    """
    if n < 1:
        raise ValueError(f"grid_split: need n >= 1, got {n}")
    root = math.sqrt(n)
    divisors = [m for m in range(math.ceil(root), int(2 * root) + 1) if n % m == 0]
    # a fine side somewhat longer than sqrt(n) runs the batched matmul faster (measured)
    fine = min(divisors, key=lambda m: abs(m - 1.5 * root)) if divisors else math.ceil(root)
    return -(-n // fine), fine


def _cis(cycles: Tensor, real_dtype: torch.dtype) -> Tensor:
    """``exp(-j 2 pi cycles)``; ``cycles`` float64, reduced modulo 1 here before rounding."""
    angle = torch.frac(cycles).to(real_dtype).mul_(-2.0 * math.pi)
    return torch.complex(torch.cos(angle), torch.sin(angle))


@dataclass(frozen=True)
class _GridPlan:
    """How a grid of ``n`` points is factorised: ``k = k1 * n_fine + k2``, and each of the two
    tables once more, ``k2 = c * f1 + f`` (``f < f1``, ``c < f2``) and ``k1 = c * c1 + f``.

    ``multipliers`` (float64, on the device) holds, in order, the grid indices whose phases are
    evaluated directly: ``0..f1-1``, ``f1 * (0..f2-1)``, ``n_fine * (0..c1-1)``,
    ``n_fine * c1 * (0..c2-1)``; every other phase is a product of two of them.
    """

    n: int
    n_coarse: int
    n_fine: int
    sizes: tuple[int, int, int, int]  # f1, f2, c1, c2
    multipliers: Tensor


_PLANS: dict[tuple[int, str], _GridPlan] = {}


def _plan(n: int, device: torch.device) -> _GridPlan:
    key = (n, str(device))
    if key not in _PLANS:
        n_coarse, n_fine = grid_split(n)
        f2, f1 = grid_split(n_fine)
        c2, c1 = grid_split(n_coarse)
        parts = [
            np.arange(f1),
            f1 * np.arange(f2),
            n_fine * np.arange(c1),
            n_fine * c1 * np.arange(c2),
        ]
        mult = torch.as_tensor(np.concatenate(parts), dtype=torch.float64, device=device)
        _PLANS[key] = _GridPlan(n, n_coarse, n_fine, (f1, f2, c1, c2), mult)
    return _PLANS[key]


def _tables(
    delays_s: Tensor,
    step_hz: float,
    start_hz: float,
    n: int,
    real_dtype: torch.dtype,
    gains: Tensor | None = None,
) -> tuple[Tensor, Tensor, _GridPlan]:
    """Phase tables of ``exp(-j 2 pi (start + (k1 M + k2) step) tau)``.

    Returns ``coarse`` (B, L, K1) (the start phase folded in), ``fine`` (B, L, M) (times
    ``gains[..., None]`` if given) and the grid plan. All phases are formed in float64 as
    ``frac(frac(tau * step) * multiplier)`` before rounding to ``real_dtype``: one evaluation
    of sines and cosines, on about ``4 n^(1/4)`` phases per tap.
    """
    plan = _plan(n, delays_s.device)
    f1, f2, c1, c2 = plan.sizes
    tau = delays_s.to(torch.float64)
    cycles = torch.frac(tau * step_hz)[..., None] * plan.multipliers  # (B, L, f1+f2+c1+c2)
    table = _cis(cycles, real_dtype)
    fine_lo, fine_hi, coarse_lo, coarse_hi = table.split([f1, f2, c1, c2], dim=-1)
    if gains is not None:
        fine_hi = fine_hi * gains[..., None]
    if start_hz:
        coarse_hi = coarse_hi * _cis(tau * start_hz, real_dtype)[..., None]
    fine = (fine_hi[..., :, None] * fine_lo[..., None, :]).flatten(-2)
    coarse = (coarse_hi[..., :, None] * coarse_lo[..., None, :]).flatten(-2)
    if f1 * f2 != plan.n_fine:
        fine = fine[..., : plan.n_fine]
    if c1 * c2 != plan.n_coarse:
        coarse = coarse[..., : plan.n_coarse]
    return coarse, fine, plan


def tap_response(
    delays_s: Tensor, gains: Tensor, step_hz: float, n: int, start_hz: float = 0.0
) -> Tensor:
    """Exact frequency response of tapped delay lines on a regular grid.

    ``out[b, k] = sum_l gains[b, l] exp(-j 2 pi (start_hz + k step_hz) delays_s[b, l])``.

    delays_s: (B, L) seconds (any float dtype; phases are formed in float64).
    gains:    (B, L) complex64 or complex128 (sets the output dtype).
    Returns (B, n) of ``gains.dtype``. Zero gains (padded taps) contribute nothing.
    """
    coarse, fine, plan = _tables(delays_s, step_hz, start_hz, n, _REAL[gains.dtype], gains)
    out = torch.bmm(coarse.transpose(1, 2), fine)  # (B, K1, M)
    out = out.reshape(gains.shape[0], plan.n_coarse * plan.n_fine)
    return out if plan.n_coarse * plan.n_fine == n else out[:, :n].contiguous()


def tap_correlate(delays_s: Tensor, y: Tensor, step_hz: float, start_hz: float = 0.0) -> Tensor:
    """Adjoint of :func:`tap_response`: ``out[b, l] = sum_k conj(V[b, k, l]) y[b, k]``.

    ``V[b, k, l] = exp(-j 2 pi (start_hz + k step_hz) delays_s[b, l])``.
    delays_s: (B, L) seconds; y: (B, n) complex64/complex128. Returns (B, L) of ``y.dtype``.
    """
    batch, n = y.shape
    coarse, fine, plan = _tables(delays_s, step_hz, start_hz, n, _REAL[y.dtype])
    padded = plan.n_coarse * plan.n_fine
    if padded != n:
        y = torch.nn.functional.pad(y, (0, padded - n))
    grid = y.reshape(batch, plan.n_coarse, plan.n_fine)
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
        self._n_taps = put(pdps.n_taps, torch.int64)
        self.n_taps = int(pdps.delays_s.shape[1])
        # On the CPU the taps beyond the 90th percentile of the tap count are summed only for the
        # few samples that have them (the padding is otherwise most of the work); on other
        # devices every sample takes all taps (no host sync).
        head = int(np.ceil(np.quantile(pdps.n_taps, 0.9)))
        self._head_taps = head if self.device.type == "cpu" else self.n_taps
        # Per-PDP Gram matrices of the band (L x L, complex128) for the realisation normalisation,
        # when they take at most 128 MiB; else they are built per batch.
        self._gram: Tensor | None = None
        if normalisation == "realisation" and len(pdps) * self.n_taps**2 <= 1 << 23:
            df, n_sc = ofdm.subcarrier_spacing_hz, ofdm.n_subcarriers
            self._gram = torch.cat(
                [dirichlet_gram(d, df, n_sc) for d in self._delays.split(1024)]
            )

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

        snr_db: a float (the same SNR for all), a ``(lo, hi)`` tuple or list (uniform in dB per
            sample) or a (B,) tensor. index: optional (B,) int64 PDP indices (else drawn uniformly).
        The same generator state gives the identical batch. Random numbers are drawn on the
        generator's device and moved to the sampler's device if that differs.
        """
        ofdm, dev, b = self.ofdm, self.device, int(batch_size)
        gdev = generator.device
        if index is None:
            index = torch.randint(len(self), (b,), generator=generator, device=gdev)
        elif index.shape != (b,):
            raise ValueError(f"index: expected shape ({b},), got {tuple(index.shape)}")
        offset = torch.empty(b, dtype=torch.float64, device=gdev)
        offset.uniform_(0.0, ofdm.max_delay_offset_s, generator=generator)
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
        delays = self._delays[index] + offset[:, None]
        gains = gains * self._diffuse_std[index]
        if phi is not None:
            specular = self._specular_amp[index] * torch.polar(torch.ones_like(phi), phi.to(dev))
            gains[:, 0] += specular

        if self.normalisation == "realisation":
            gains = gains * self._band_rms(gains, delays, index).reciprocal()[:, None]
        h = self._response(delays, gains, index)
        noise_var = torch.pow(10.0, -snr / 10.0)
        h_ls = h[:, ofdm.pilot_offset :: ofdm.pilot_spacing].contiguous()
        # (complex addcmul and index_add_ were measured 2-6x slower than on the real views)
        noise_std = noise_var.sqrt()[:, None, None]
        torch.view_as_real(h_ls).addcmul_(torch.view_as_real(noise), noise_std)
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

    def _band_rms(self, gains: Tensor, delays: Tensor, index: Tensor) -> Tensor:
        """(B,) float32 ``sqrt(mean_k |H[k]|^2)`` of the taps, without forming H.

        ``sum_k |H[k]|^2 = g^H G g`` with the closed-form Gram ``G = V^H V``
        (:func:`dirichlet_gram`), evaluated in float64. G depends only on tap delay differences,
        so it is precomputed per PDP when that is small, else built for the batch.
        """
        if self._gram is not None:
            gram = self._gram[index]
        else:
            gram = dirichlet_gram(delays, self.ofdm.subcarrier_spacing_hz, self.ofdm.n_subcarriers)
        g = gains.to(torch.complex128)
        energy = (g.conj() * torch.bmm(gram, g[:, :, None])[:, :, 0]).sum(-1).real
        return (energy / self.ofdm.n_subcarriers).sqrt().to(torch.float32)

    def _response(self, delays: Tensor, gains: Tensor, index: Tensor) -> Tensor:
        """(B, n_sc) complex64 exact response: :func:`tap_response`, the rare tail taps apart."""
        df, n = self.ofdm.subcarrier_spacing_hz, self.ofdm.n_subcarriers
        head = self._head_taps
        if head >= self.n_taps:
            return tap_response(delays, gains, df, n)
        h = tap_response(delays[:, :head], gains[:, :head], df, n)
        tail = torch.nonzero(self._n_taps[index] > head).squeeze(1)
        if tail.numel():
            rest = tap_response(delays[tail, head:], gains[tail, head:], df, n)
            torch.view_as_real(h).index_add_(0, tail, torch.view_as_real(rest))
        return h

    def _snr(
        self, snr_db: float | tuple[float, float] | Tensor, b: int, generator: torch.Generator
    ) -> Tensor:
        """(b,) float32 SNR in dB on the generator's device (a draw only for a range)."""
        gdev = generator.device
        if isinstance(snr_db, Tensor):
            if snr_db.shape != (b,):
                raise ValueError(f"snr_db: expected shape ({b},), got {tuple(snr_db.shape)}")
            return snr_db.to(device=gdev, dtype=torch.float32)
        if isinstance(snr_db, (tuple, list)):
            lo, hi = (float(v) for v in snr_db)
            if lo > hi:
                raise ValueError(f"snr_db: expected a (low, high) range, got {snr_db!r}")
            return torch.empty(b, device=gdev).uniform_(lo, hi, generator=generator)
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
    ``1 / (fft_size * df)``) by sinc interpolation of each tap in turn onto samples
    ``0 .. fft_size-1`` (so, as in the research code, the sinc's tails outside that window are
    cut: the response is approximate, unlike :class:`ChannelSampler`'s); FFTs to ``fft_size``
    bins; keeps ``n_subcarriers`` bins centred on DC (a fixed frequency shift of the ``k * df``
    grid, i.e. one phase per tap, which leaves the statistics unchanged); normalises
    ``mean |H|^2 = 1``; adds noise at the pilots.

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
        impulse += gain * np.sinc(n - tau / sample_period)
    spectrum = np.fft.fft(impulse)
    h = spectrum[(np.arange(ofdm.n_subcarriers) - ofdm.n_subcarriers // 2) % n_fft]
    h = h / np.sqrt(np.mean(np.abs(h) ** 2))
    noise_var = 10.0 ** (-snr_db / 10.0)
    n_p = ofdm.n_pilots
    noise = np.sqrt(noise_var / 2.0) * (rng.standard_normal(n_p) + 1j * rng.standard_normal(n_p))
    return h, h[ofdm.pilot_indices] + noise, noise_var
