"""Batched, exact OFDM channel synthesis from power-delay profiles (torch): the sampler and NMSE.

One realisation: pick a PDP, add a common delay offset ``tau0 ~ U[0, ofdm.max_delay_offset_s)``
to all its taps, draw the tap gains (Rayleigh, plus a specular first tap when the PDP has a
Rician K-factor), evaluate the exact frequency response on the used subcarriers

    H[k] = sum_l a_l exp(-j 2 pi f_k tau_l),    f_k = k * ofdm.subcarrier_spacing_hz,

normalise it, and observe it at the DMRS pilots through AWGN (unit-modulus pilots, so the LS
estimate is ``H[pilots] + CN(0, noise_var)``).

Speed: the tap sum is :func:`chanest.channel.response.tap_response` (see there). The
per-realisation normalisation is computed from the taps, ``||H||^2 = g^H G g`` with the closed-form
Gram matrix ``G`` (precomputed per PDP), and folded into the gains: no pass over H. On the CPU,
taps beyond the 90th percentile of the tap count are summed separately for the few samples that
have them, instead of multiplying padding for every sample. What remains is mostly the batched
matmul and the pilot noise (the largest random draw: torch's CPU generator is serial, about 3 ns
a number; drawing it in two halves on two threads from child generators gains nothing
measurable, so it is drawn in one).

Units and shapes: delays in seconds, powers linear, frequencies in Hz; ``B`` is the batch,
``L`` the (padded) tap count, ``n_sc`` the used subcarriers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import PDPSet
from chanest.channel.response import dirichlet_gram, tap_response

#: The supported normalisations of the synthesised channel (see :class:`ChannelSampler`).
NORMALISATIONS: tuple[str, ...] = ("realisation", "pdp")

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


