"""Link level: block error rate of a 5G NR PUSCH slot with chanest's channels and estimators.

Sionna's NR PUSCH chain (``sionna.phy.nr``: TB encoding with LDPC, QAM, DMRS type 1 comb-2 on OFDM
symbol 2, an LMMSE equaliser and the TB decoder) carries one transport block per slot over a
channel chanest synthesises from a target's *test* PDPs (the same taps, delay offset and
per-realisation normalisation as the NMSE test sets; block fading over the slot, SISO, one layer).
The receiver estimates the channel with any chanest estimator through :class:`SionnaEstimator`,
or is told it (``perfect``, Sionna's perfect-CSI mode, the floor).

Units: ``snr_db`` is the data SNR per resource element, ``1 / no`` (unit-energy channel and data
symbols). The DMRS is sent at twice the data power (``num_cdm_groups_without_data = 2``), so the LS
estimate at a pilot has noise variance ``no / 2``: chanest estimators see a pilot SNR of
``snr_db + 3.01`` dB, the SNR their inputs are defined in.

A *curve* is one (target, MCS, method). Its SNR points are found adaptively on a 0.5 dB lattice
(:func:`simulate_curve`): a walk in 1 dB steps brackets the 10% BLER crossing, then the points
within 1 dB of it (re-centred on the fitted crossing) get blocks until ``min_errors`` block errors
or ``max_blocks``. Every random number of a
batch (bits, noise, the channel) is seeded by (seed, target, MCS, lattice point, batch), so at a
shared SNR point every method decodes the very same blocks: comparisons are paired.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from chanest.evaluation.methods import subset
from chanest.studies.bler import SNR_STEP_DB, TARGET_BLER, fit_logistic
from chanest.channel.ofdm import OFDMConfig
from chanest.utils.params import COUNT, NON_NEGATIVE, Range, from_section, get
from chanest.channel.sampler import ChannelBatch, ChannelSampler

log = logging.getLogger(__name__)

#: The estimators a link can use (``perfect``: Sionna's perfect CSI; the rest: chanest's).
METHODS = ("perfect", *subset("ls", "lmmse_stat", "lmmse_genie", "base", "lora"))
#: DMRS power over data power (dB) with ``num_cdm_groups_without_data = 2`` (beta = sqrt(2)).
PILOT_BOOST_DB = 10 * math.log10(2.0)


@dataclass(frozen=True)
class LinkParams:
    """``link`` params.

    mcs_table / mcs_index: 38.214 MCS of each curve family (table 1: index 7 = QPSK, R 0.51;
    index 14 = 16-QAM, R 0.54). cn_update / bp_iterations: the LDPC decoder (Sionna's
    ``TBDecoder``: ``minsum`` at 8 iterations is ~3x faster than 20 ``boxplus-phi``).
    batch_size: blocks per batch; probe_batches: batches per point of the bracketing walk;
    min_errors / max_blocks: when a point around the crossing has enough blocks; n_boot: PDP
    bootstrap replicates of the 10% point; seed: the link's own seed; workers: one-thread
    processes running curves side by side; device: ``auto`` | ``cpu`` | ``cuda``.
    """

    methods: tuple[str, ...] = METHODS
    mcs_table: int = 1
    mcs_index: tuple[int, ...] = (7, 14)
    cn_update: str = "minsum"
    bp_iterations: int = 8
    batch_size: int = 16
    probe_batches: int = 1
    min_errors: int = 25
    max_blocks: int = 160
    n_boot: int = 500
    seed: int = 11
    workers: int = 2
    device: str = "auto"

    RANGES: ClassVar[dict[str, Range]] = {
        "mcs_table": Range(1.0, 4.0), "mcs_index": NON_NEGATIVE, "bp_iterations": COUNT, "batch_size": COUNT,
        "probe_batches": COUNT, "min_errors": COUNT, "max_blocks": COUNT, "n_boot": Range(100.0),
        "workers": COUNT,
    }

    #: What ``methods`` may name.
    KNOWN_METHODS: ClassVar[tuple[str, ...]] = METHODS

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in self.KNOWN_METHODS]
        if unknown:
            raise ValueError(f"link.methods: unknown {unknown}; expected some of {self.KNOWN_METHODS}")
        if self.cn_update not in ("minsum", "offset-minsum", "boxplus", "boxplus-phi"):
            raise ValueError(f"link.cn_update {self.cn_update!r}: expected minsum, offset-minsum, boxplus "
                             "or boxplus-phi")
        if self.min_errors > self.max_blocks:
            raise ValueError(f"link.min_errors ({self.min_errors}) must be <= max_blocks ({self.max_blocks})")


def link_params(params: dict) -> LinkParams:
    """The ``link`` params section as a :class:`LinkParams`."""
    return from_section(LinkParams, get(params, "link"), "link")


# --------------------------------------------------------------------------------------------
# Sionna's PUSCH for chanest's numerology
# --------------------------------------------------------------------------------------------


def pusch_config(ofdm: OFDMConfig, mcs_table: int, mcs_index: int):
    """A Sionna ``PUSCHConfig`` for the slot chanest synthesises: SISO, one layer, all
    ``ofdm.n_subcarriers`` (whole PRBs) at ``ofdm.subcarrier_spacing_hz``, 14 symbols, normal CP,
    DMRS type 1 (comb-2 from subcarrier 0) on symbol ``ofdm.dmrs_symbol`` = 2 and no data beside it.
    Raises ``ValueError`` naming the ``ofdm`` key that Sionna's PUSCH cannot match."""
    from sionna.phy.nr import CarrierConfig, PUSCHConfig, PUSCHDMRSConfig, TBConfig

    need = {"n_subcarriers % 12": (ofdm.n_subcarriers % 12, 0), "n_symbols": (ofdm.n_symbols, 14),
            "dmrs_symbol": (ofdm.dmrs_symbol, 2), "pilot_spacing": (ofdm.pilot_spacing, 2),
            "pilot_offset": (ofdm.pilot_offset, 0)}
    bad = [f"ofdm.{k} = {got} (PUSCH needs {want})" for k, (got, want) in need.items() if got != want]
    if bad:
        raise ValueError("the link needs a PUSCH-shaped slot: " + "; ".join(bad))
    scs_khz = ofdm.subcarrier_spacing_hz / 1e3
    carrier = CarrierConfig(subcarrier_spacing=scs_khz, n_size_grid=ofdm.n_subcarriers // 12,
                            cyclic_prefix="normal")
    dmrs = PUSCHDMRSConfig(config_type=1, length=1, additional_position=0, type_a_position=2,
                           num_cdm_groups_without_data=2)
    tb = TBConfig(channel_type="PUSCH", mcs_table=mcs_table, mcs_index=mcs_index)
    return PUSCHConfig(carrier_config=carrier, pusch_dmrs_config=dmrs, tb_config=tb, mapping_type="A",
                       symbol_allocation=[0, 14], num_layers=1, num_antenna_ports=1, precoding="non-codebook")


def mcs_name(pc) -> str:
    """``qpsk_r0.51``, ``16qam_r0.54``, ...: modulation and code rate of a PUSCH config."""
    qm = int(pc.tb.num_bits_per_symbol)
    mod = {2: "qpsk", 4: "16qam", 6: "64qam", 8: "256qam"}.get(qm, f"qm{qm}")
    return f"{mod}_r{float(pc.tb.target_coderate):.2f}"


class SionnaEstimator(nn.Module):
    """A chanest estimator as a Sionna PUSCH channel estimator: ``(y, no) -> (h_hat, err_var)``.

    y: [B, 1, 1, 14, n_sc] complex64 received grid; no: noise variance per RE (scalar or [B]).
    The LS pilots are ``y`` on the DMRS comb divided by the known DMRS symbols; ``estimate`` maps a
    :class:`ChannelBatch` (``h_ls``, ``noise_var`` and ``snr_db`` at the pilots; ``delays_s`` and
    ``powers`` of the blocks' channels from :attr:`context`, which the genie reads) to (B, n_sc).
    h_hat: [B, 1, 1, 1, 1, 14, n_sc], the same on every symbol (block fading);
    err_var: [B, 1, 1, 1, 1, 1, 1] float32, ``err_var_at(pilot_snr_db)``: the estimator's own
    mean squared error per RE at that SNR, which the LMMSE equaliser adds to the noise.
    """

    def __init__(self, estimate: Callable[[ChannelBatch], Tensor], err_var_at: Callable[[Tensor], Tensor],
                 dmrs: Tensor, pilot_index: Tensor, dmrs_symbol: int):
        super().__init__()
        self.estimate, self.err_var_at = estimate, err_var_at
        self.register_buffer("dmrs", dmrs)  # (n_pilots,) complex64 DMRS symbols on the comb
        self.register_buffer("pilot_index", pilot_index)
        self.dmrs_symbol = dmrs_symbol
        self.context: ChannelBatch | None = None

    def forward(self, y: Tensor, no: Tensor | float) -> tuple[Tensor, Tensor]:
        b, n_sym, n_sc = y.shape[0], y.shape[-2], y.shape[-1]
        h_ls = y[:, 0, 0, self.dmrs_symbol, self.pilot_index] / self.dmrs
        no = torch.as_tensor(no, dtype=torch.float32, device=y.device).reshape(-1).expand(b)
        noise_var = no / self.dmrs.abs().pow(2).mean()
        snr_db = -10.0 * torch.log10(noise_var)
        ctx = self.context
        if ctx is None or len(ctx) != b:
            raise RuntimeError("SionnaEstimator.context must hold the batch's channels (ChannelBatch)")
        batch = dataclasses.replace(ctx, h_ls=h_ls, noise_var=noise_var, snr_db=snr_db)
        h = self.estimate(batch).to(torch.complex64)
        h_hat = h[:, None, None, None, None, None, :].expand(b, 1, 1, 1, 1, n_sym, n_sc)
        err_var = self.err_var_at(snr_db).to(torch.float32).reshape(b, 1, 1, 1, 1, 1, 1)
        return h_hat, err_var


def dmrs_symbols(tx, ofdm: OFDMConfig) -> Tensor:
    """(n_pilots,) complex64: what the transmitter ``tx`` sends on the DMRS comb (data-independent;
    checked: nothing on the other subcarriers of the DMRS symbol)."""
    x, _ = tx(1)
    row = x[0, 0, 0, ofdm.dmrs_symbol]
    pilots = torch.as_tensor(ofdm.pilot_indices, device=row.device)
    others = torch.ones(row.shape[-1], dtype=torch.bool, device=row.device)
    others[pilots] = False
    if row[others].abs().max() > 0 or (row[pilots].abs() == 0).any():
        raise ValueError("the PUSCH DMRS symbol is not the comb chanest assumes (pilots on "
                         f"{ofdm.pilot_indices[:3].tolist()}..., nothing between)")
    return row[pilots].clone()


def nmse_table(estimate: Callable[[ChannelBatch], Tensor], sampler: ChannelSampler, snr_db: np.ndarray,
               n_per_snr: int, seed: int) -> np.ndarray:
    """Mean per-sample NMSE (linear) of ``estimate`` at each pilot SNR of ``snr_db`` on ``sampler``
    (the val split: the error variance the receiver is told is not fitted on the test blocks)."""
    g = torch.Generator().manual_seed(seed)
    snr = torch.tensor(snr_db, dtype=torch.float32).repeat_interleave(n_per_snr)
    batch = sampler.sample(len(snr), snr, g)
    with torch.inference_mode():
        err = (estimate(batch) - batch.h).abs().pow(2).sum(-1) / batch.h.abs().pow(2).sum(-1)
    return err.reshape(len(snr_db), n_per_snr).mean(-1).double().numpy()


# --------------------------------------------------------------------------------------------
# One curve: adaptive SNR points, blocks until enough errors
# --------------------------------------------------------------------------------------------


@dataclass
class Blocks:
    """Every decoded block of one curve: its SNR (dB), PDP (test-split index) and CRC failure."""

    snr_db: list[float] = dataclasses.field(default_factory=list)
    pdp_index: list[int] = dataclasses.field(default_factory=list)
    error: list[bool] = dataclasses.field(default_factory=list)

    def at(self, snr_db: float) -> tuple[int, int]:
        """(blocks, errors) at one SNR."""
        sel = [e for s, e in zip(self.snr_db, self.error) if s == snr_db]
        return len(sel), int(sum(sel))


class Link:
    """Transmitter, channel and one receiver per method for one (target, MCS); decodes batches."""

    def __init__(self, ofdm: OFDMConfig, lp: LinkParams, mcs_index: int, sampler: ChannelSampler,
                 estimators: dict[str, Callable[[ChannelBatch], Tensor]],
                 err_var: dict[str, Callable[[Tensor], Tensor]], seed_key: tuple[int, ...]):
        from sionna.phy.channel import ApplyOFDMChannel
        from sionna.phy.nr import PUSCHReceiver, PUSCHTransmitter, TBDecoder

        self.ofdm, self.lp, self.sampler, self.seed_key = ofdm, lp, sampler, seed_key
        self.pc = pusch_config(ofdm, lp.mcs_table, mcs_index)
        self.tx = PUSCHTransmitter(self.pc, return_bits=True, output_domain="freq")
        self.channel = ApplyOFDMChannel()
        dmrs = dmrs_symbols(self.tx, ofdm)
        pilots = torch.as_tensor(ofdm.pilot_indices, dtype=torch.int64)
        self.receivers, self.adapters = {}, {}
        for method in estimators.keys() | {"perfect"}:
            if method == "perfect":
                est = "perfect"
            else:
                est = SionnaEstimator(estimators[method], err_var[method], dmrs, pilots, ofdm.dmrs_symbol)
                self.adapters[method] = est
            decoder = TBDecoder(self.tx._tb_encoder, num_bp_iter=lp.bp_iterations, cn_update=lp.cn_update)
            self.receivers[method] = PUSCHReceiver(self.tx, channel_estimator=est, tb_decoder=decoder,
                                                   return_tb_crc_status=True, input_domain="freq")

    def batch(self, point: int, index: int) -> tuple[ChannelBatch, Tensor, Tensor, Tensor, Tensor]:
        """Batch ``index`` at lattice point ``point`` (SNR ``point * SNR_STEP_DB``), identical for
        every method: (channels, h_freq, received y, no, transmitted bits)."""
        from sionna.phy import config as sionna_config

        seeds = np.random.SeedSequence([*self.seed_key, point + 1000, index]).generate_state(2)
        sionna_config.seed = int(seeds[0])  # the bits and the noise
        g = torch.Generator().manual_seed(int(seeds[1]))  # the channels
        b = self.lp.batch_size
        chan = self.sampler.sample(b, 0.0, g)  # (h_ls and its noise unused: the link makes its own)
        h_freq = chan.h[:, None, None, None, None, None, :].expand(b, 1, 1, 1, 1, self.ofdm.n_symbols,
                                                                   self.ofdm.n_subcarriers)
        x, bits = self.tx(b)
        no = torch.tensor(10.0 ** (-point * SNR_STEP_DB / 10.0), dtype=torch.float32)
        y = self.channel(x, h_freq, no)
        return chan, h_freq, y, no, bits

    @torch.inference_mode()
    def decode(self, method: str, point: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(errors (B,) bool, pdp_index (B,)) of batch ``index`` at ``point`` with ``method``."""
        chan, h_freq, y, no, _ = self.batch(point, index)
        if method == "perfect":
            _, crc = self.receivers[method](y, no, h_freq)
        else:
            self.adapters[method].context = chan
            _, crc = self.receivers[method](y, no)
        return ~crc[:, 0].cpu().numpy(), chan.pdp_index.cpu().numpy()


def simulate_curve(link: Link, method: str, start_db: float, lo_db: float = -10.0, hi_db: float = 40.0) -> Blocks:
    """Blocks of one method on ``link`` around its 10% BLER crossing (see the module docstring)."""
    lp, out = link.lp, Blocks()
    ran: dict[int, int] = {}  # point -> batches decoded there

    def run(point: int, batches: int) -> float:
        for i in range(ran.get(point, 0), batches):
            err, pdp = link.decode(method, point, i)
            out.snr_db += [point * SNR_STEP_DB] * len(err)
            out.pdp_index += pdp.tolist()
            out.error += err.tolist()
        ran[point] = max(ran.get(point, 0), batches)
        n, e = out.at(point * SNR_STEP_DB)
        return e / n

    step = round(1.0 / SNR_STEP_DB)
    point = round(start_db / SNR_STEP_DB)
    lo, hi = round(lo_db / SNR_STEP_DB), round(hi_db / SNR_STEP_DB)
    above = run(point, lp.probe_batches) > TARGET_BLER
    while True:  # walk in 1 dB steps until the crossing is bracketed
        nxt = point + (step if above else -step)
        if not lo <= nxt <= hi:  # (an estimator whose BLER floors above the target)
            log.warning("%s: no %.0f%% BLER crossing in [%g, %g] dB", method, 100 * TARGET_BLER, lo_db, hi_db)
            return out
        if (run(nxt, lp.probe_batches) > TARGET_BLER) != above:
            low, high = sorted((point, nxt))
            break
        point = nxt
    # then every lattice point within 1 dB of the crossing, re-centred on the fitted crossing
    # until the points around it have their blocks (at most three rounds)
    centre = (low + high) / 2
    for _ in range(3):
        points = range(math.ceil(centre - step), math.floor(centre + step) + 1)
        for p in points:
            if lo <= p <= hi:
                while True:
                    n, e = out.at(p * SNR_STEP_DB)
                    if e >= lp.min_errors or n >= lp.max_blocks:
                        break
                    run(p, ran.get(p, 0) + 1)
        fitted = fit_logistic(np.asarray(out.snr_db), np.asarray(out.error), np.ones((1, len(out.error))))[0]
        if not math.isfinite(fitted) or abs(fitted / SNR_STEP_DB - centre) <= 0.5:
            break
        centre = fitted / SNR_STEP_DB
    return out
