"""chanest's estimators as Sionna channel estimators: ``(y, no) -> (h_hat, err_var)`` on a resource grid.

:class:`ChanestEstimator` follows the contract of Sionna's ``BaseChannelEstimator``
(``sionna.phy.ofdm``), so it drops into any Sionna receiver that takes a channel estimator:
``PUSCHReceiver(channel_estimator=...)``, or an ``LMMSEEqualizer`` on a resource grid of your own.
It reads the pilots of one OFDM symbol (SISO, one stream, block fading over the slot), hands the LS
estimates at those pilots to a chanest estimator, and returns its estimate on every effective
subcarrier of every symbol, with an **error variance per resource element** that Sionna's
equalisers add to the noise (it becomes the LLRs' confidence).

The error variance is calibrated, not guessed (:class:`ErrorVariance`): the estimator is run on
channels drawn from a PDP set (the target's validation split, never its test PDPs) at a grid of
pilot SNRs, and its mean squared error is kept per SNR and subcarrier, relative to the channel's
power. At run time it is interpolated at each slot's pilot SNR (linearly in dB) and scaled by the
slot's channel power. `tests/test_receiver.py` checks it against the squared error measured on
held-out test channels (within 20% at every SNR).

Units: ``no`` is the noise variance per resource element (Sionna's), pilots are the known symbols
of the resource grid's pilot pattern, so the LS estimate at a pilot ``p`` has noise variance
``no / |p|^2`` and its SNR is ``channel_power * |p|^2 / no``. chanest's estimators are trained on
channels of unit mean power per resource element; ``channel_power=None`` estimates each slot's
power from its pilots (``mean |h_ls|^2 - noise``) and scales the pilots to unit power before the
estimator sees them, a float tells it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sionna.phy.ofdm import BaseChannelEstimator, ResourceGrid
from torch import Tensor

from chanest.channel.sampler import ChannelBatch, ChannelSampler

#: ``estimate(batch) -> (B, n_sc)``: a chanest estimator on a :class:`ChannelBatch` (``h_ls``,
#: ``noise_var``, ``snr_db`` at the pilots; the genie also reads ``delays_s`` and ``powers``).
Estimate = Callable[[ChannelBatch], Tensor]


@dataclass(frozen=True)
class ErrorVariance:
    """Mean squared error of an estimator per pilot SNR and subcarrier, relative to the channel power.

    snr_db: (S,) ascending pilot SNRs (dB); nmse: (S, n_sc) ``E|h_hat_k - h_k|^2 / E|h_k|^2``
    (linear). :meth:`__call__` interpolates ``log(nmse)`` linearly in dB and holds the ends.
    """

    snr_db: Tensor
    nmse: Tensor

    def __call__(self, snr_db: Tensor) -> Tensor:
        """(B,) pilot SNRs in dB -> (B, n_sc) float32 relative error variance."""
        grid, log_nmse = self.snr_db.to(snr_db.device, torch.float64), self.nmse.to(snr_db.device).log()
        s = snr_db.to(torch.float64).clamp(float(grid[0]), float(grid[-1]))
        hi = torch.searchsorted(grid, s).clamp(1, len(grid) - 1)
        t = ((s - grid[hi - 1]) / (grid[hi] - grid[hi - 1]))[:, None]
        return ((1 - t) * log_nmse[hi - 1] + t * log_nmse[hi]).exp().float()


def calibrate(estimate: Estimate, sampler: ChannelSampler, snr_db: tuple[float, ...] | np.ndarray,
              n_per_snr: int = 64, seed: int = 0, chunk: int = 64) -> ErrorVariance:
    """The :class:`ErrorVariance` of ``estimate`` on ``n_per_snr`` channels of ``sampler`` per SNR.

    Use a split the estimator is not judged on (chanest uses the validation PDPs). Per SNR the
    error of each subcarrier is averaged over the channels and divided by their mean power, so a
    slot's error variance is this times its own channel power.
    """
    grid = torch.as_tensor(np.asarray(snr_db, dtype=np.float64))
    if grid.ndim != 1 or len(grid) < 2 or not bool((grid[1:] > grid[:-1]).all()):
        raise ValueError(f"calibrate: snr_db must be at least two ascending SNRs, got {grid.tolist()}")
    g = torch.Generator().manual_seed(seed)
    rows = []
    with torch.inference_mode():
        for s in grid.tolist():
            err, power = 0.0, 0.0
            for start in range(0, n_per_snr, chunk):
                b = sampler.sample(min(chunk, n_per_snr - start), float(s), g)
                err = err + (estimate(b).to(b.h.dtype) - b.h).abs().pow(2).double().sum(0)
                power = power + b.h.abs().pow(2).double().sum()
            rows.append(err / (power / b.h.shape[-1]))
    return ErrorVariance(grid, torch.stack(rows).clamp_min(1e-12))


class ChanestEstimator(BaseChannelEstimator):
    """A chanest estimator in a Sionna receiver (see the module docstring).

    resource_grid: the receiver's ``ResourceGrid``; its pilot pattern must put the pilots the
        estimator expects on one OFDM symbol (nonzero pilot symbols; zeros, as on PUSCH's empty
        CDM group, are ignored). estimate: :data:`Estimate`. error_variance: its calibration.
    channel_power: ``None`` (estimated per slot from the pilots) or the known mean power per RE.

    ``context``: a :class:`ChannelBatch` of the slots' true channels, read only by estimators that
    are told them (the genie LMMSE in a simulation); leave ``None`` otherwise.

    Input y: [B, num_rx, num_rx_ant, num_ofdm_symbols, fft_size] complex; no: [B, ...] or scalar.
    Output h_hat: [B, 1, 1, 1, 1, num_ofdm_symbols, n_sc] complex, the same on every symbol;
    err_var: the same shape, float (per resource element).
    """

    def __init__(self, resource_grid: ResourceGrid, estimate: Estimate, error_variance: ErrorVariance,
                 channel_power: float | None = None, precision: str | None = None, device: str | None = None):
        super().__init__(resource_grid, precision=precision, device=device)
        self.estimate, self.error_variance, self.channel_power = estimate, error_variance, channel_power
        self.context: ChannelBatch | None = None
        symbol, subcarriers, values = pilot_comb(resource_grid)
        self.pilot_symbol = symbol
        self.register_buffer("pilot_index", torch.as_tensor(subcarriers, device=self.device), persistent=False)
        self.register_buffer("pilots", torch.as_tensor(values, device=self.device), persistent=False)
        self.n_subcarriers = int(resource_grid.num_effective_subcarriers)

    @classmethod
    def from_saved(cls, directory: str | os.PathLike, resource_grid: ResourceGrid, calibration: ChannelSampler,
                   snr_db: tuple[float, ...] = tuple(np.arange(-10.0, 47.5, 2.5)), n_per_snr: int = 64,
                   seed: int = 0, **kwargs) -> ChanestEstimator:
        """A saved chanest estimator (``models/base``, or an adapter's ``models/lora/<Target>/merged``)
        on ``resource_grid``, its error variance calibrated on channels of ``calibration`` (a
        :class:`ChannelSampler` at the model's numerology, e.g. the target's validation PDPs)."""
        from chanest.estimators.checkpoint import load_estimator

        model = load_estimator(directory).eval()
        symbol, subcarriers, _ = pilot_comb(resource_grid)
        if tuple(subcarriers.tolist()) != model.cfg.pilot_indices:
            raise ValueError(f"{directory}: the estimator expects pilots on subcarriers "
                             f"{list(model.cfg.pilot_indices[:4])}... of {model.cfg.n_subcarriers}; the resource "
                             f"grid has them on {subcarriers[:4].tolist()}... of "
                             f"{resource_grid.num_effective_subcarriers} (symbol {symbol})")

        def estimate(b: ChannelBatch) -> Tensor:
            return model(b.h_ls, b.snr_db)

        return cls(resource_grid, estimate, calibrate(estimate, calibration, snr_db, n_per_snr, seed), **kwargs)

    def call(self, y: Tensor, no: Tensor | float) -> tuple[Tensor, Tensor]:
        y_eff = self._remove_nulled_scs(y)  # [B, rx, rx_ant, symbols, n_sc]
        b, n_sym = y_eff.shape[0], y_eff.shape[-2]
        h_ls = (y_eff[:, 0, 0, self.pilot_symbol, self.pilot_index] / self.pilots).to(torch.complex64)
        no = torch.as_tensor(no, dtype=torch.float32, device=y.device).reshape(-1)
        noise_var = (no.expand(b) if no.numel() == 1 else no[:b]) / self.pilots.abs().pow(2).mean()
        if self.channel_power is None:
            power = (h_ls.abs().pow(2).mean(-1) - noise_var).clamp_min(1e-3 * noise_var)
        else:
            power = torch.full((b,), float(self.channel_power), device=y.device)
        scale = power.sqrt()
        batch = ChannelBatch(h=torch.empty(0), h_ls=h_ls / scale[:, None], snr_db=10 * torch.log10(power / noise_var),
                             noise_var=noise_var / power, pdp_index=torch.empty(0),
                             delays_s=torch.empty(0), powers=torch.empty(0), gains=torch.empty(0))
        if self.context is not None:
            if len(self.context) != b:
                raise ValueError(f"context holds {len(self.context)} channels, the slot {b}")
            batch.delays_s, batch.powers = self.context.delays_s, self.context.powers
        h = self.estimate(batch).to(torch.complex64) * scale[:, None]
        err = self.error_variance(batch.snr_db) * power[:, None]
        shape = (b, 1, 1, 1, 1, n_sym, self.n_subcarriers)
        return h[:, None, None, None, None, None, :].expand(shape), err[:, None, None, None, None, None, :].expand(shape)


def pilot_comb(resource_grid: ResourceGrid) -> tuple[int, np.ndarray, np.ndarray]:
    """(OFDM symbol, pilot subcarriers (P,), pilot symbols (P,) complex64) of a resource grid whose
    nonzero pilots sit on one OFDM symbol of one transmitter and stream; ``ValueError`` otherwise."""
    pp = resource_grid.pilot_pattern
    mask = np.asarray(pp.mask.cpu() if hasattr(pp.mask, "cpu") else pp.mask)
    values = np.asarray(pp.pilots.cpu() if hasattr(pp.pilots, "cpu") else pp.pilots)
    if mask.shape[:2] != (1, 1):
        raise ValueError(f"chanest estimators are SISO, one stream: the pilot pattern is for {mask.shape[0]} "
                         f"transmitters x {mask.shape[1]} streams")
    where = np.argwhere(mask[0, 0])  # (n, 2): symbol, subcarrier, in the order of the pilots
    order = np.lexsort((where[:, 1], where[:, 0]))
    where, vals = where[order], values[0, 0][order]
    nonzero = np.abs(vals) > 0
    symbols = np.unique(where[nonzero, 0])
    if len(symbols) != 1:
        raise ValueError(f"chanest estimators read the pilots of one OFDM symbol; the pattern has nonzero "
                         f"pilots on symbols {symbols.tolist()}")
    return int(symbols[0]), where[nonzero, 1].astype(np.int64), vals[nonzero].astype(np.complex64)

