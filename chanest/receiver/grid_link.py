"""Block error rate at the research's FR2 numerology: a Sionna OFDM resource grid with chanest's pilots.

Sionna's NR PUSCH carries DMRS on a comb of 2 (type 1) or pairs of subcarriers (type 2); the
research's pilot every 6th subcarrier on one OFDM symbol is neither. So this link builds the slot
from Sionna's OFDM blocks instead, with the NR transport-block chain of the PUSCH link
(:mod:`chanest.studies.link`):

- ``sionna.phy.ofdm.ResourceGrid`` of ``ofdm.fft_size`` bins at ``ofdm.subcarrier_spacing_hz``,
  ``ofdm.n_subcarriers`` effective subcarriers (guards either side), 14 symbols, and a
  ``PilotPattern``: unit-power QPSK pilots on every ``ofdm.pilot_spacing``-th subcarrier of symbol
  ``ofdm.dmrs_symbol`` (no power boost: the pilot SNR is the data SNR);
- data on ``n_prb`` resource blocks in the middle of the band, every other resource element of the
  slot empty (zero "pilots" of the pattern): the channel is still estimated from the pilots of the
  whole band, only the decoding is narrower, which keeps a 64-QAM slot to a few thousand
  resource elements (a full-band 64-QAM slot decodes about 1 block/s on one CPU thread);
- ``sionna.phy.nr.TBEncoder`` / ``TBDecoder`` (CRC, LDPC, rate matching, scrambling) sized by the
  38.214 MCS table, QAM ``Mapper`` / APP ``Demapper``, ``ResourceGridMapper``,
  ``ApplyOFDMChannel`` (block fading over the slot, AWGN) and Sionna's ``LMMSEEqualizer``, which is
  given each estimator's estimate and calibrated error variance (:class:`ChanestEstimator`), or the
  true channel with zero error (``perfect``).

Curves are found exactly as in the PUSCH link (:func:`chanest.studies.link.simulate_curve`:
adaptive SNR points on a 0.5 dB lattice, every random number seeded by (seed, target, MCS, point,
batch), so every method decodes the same blocks). ``snr_db`` is the SNR per data resource element,
``1 / no``, for channels of unit mean power.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from chanest.channel.ofdm import OFDMConfig
from chanest.evaluation.methods import subset
from chanest.channel.pdp import name_key
from chanest.channel.sampler import ChannelSampler
from chanest.receiver.estimator import ChanestEstimator, ErrorVariance, Estimate, calibrate
from chanest.studies.bler import SNR_STEP_DB
from chanest.studies.link import Blocks, LinkParams, simulate_curve
from chanest.utils.params import COUNT, Range, from_section, get

log = logging.getLogger(__name__)

#: ``perfect``: the equaliser told the true channel; the rest: estimators on the pilots.
METHODS = ("perfect", *subset("ls", "lmmse_stat", "lmmse_genie", "nomp", "base", "lora"))
#: Pilot SNRs (dB) of the error-variance calibration (held at the ends beyond them).
CALIBRATION_SNR_DB = tuple(np.arange(-10.0, 50.0, 2.5).tolist())


@dataclass(frozen=True)
class GridLinkParams(LinkParams):
    """``link`` params of ``research/params.yaml`` (``research-link/dvc.yaml``).

    mcs_table / mcs_index: 38.214 MCS of each curve family (PUSCH table 1). targets: the scenarios
    simulated (adapters of ``models/lora``). n_prb: resource blocks of data, centred in the band.
    calibration_samples: validation channels per calibration SNR. The rest as in the PUSCH link
    (:class:`chanest.studies.link.LinkParams`), with NOMP among the methods.
    """

    methods: tuple[str, ...] = METHODS
    mcs_index: tuple[int, ...] = (9, 16, 24)
    seed: int = 13
    targets: tuple[str, ...] = ("InF_Los", "RMa_Los")
    n_prb: int = 24
    calibration_samples: int = 32

    KNOWN_METHODS: ClassVar[tuple[str, ...]] = METHODS
    RANGES: ClassVar[dict[str, Range]] = LinkParams.RANGES | {"n_prb": COUNT, "calibration_samples": COUNT}


def grid_link_params(params: dict) -> GridLinkParams:
    """The ``link`` params section as a :class:`GridLinkParams`."""
    return from_section(GridLinkParams, get(params, "link"), "link")


@dataclass(frozen=True)
class SlotGrid:
    """The resource grid of one slot: pilots, the data allocation, and its Sionna objects' inputs."""

    ofdm: OFDMConfig
    n_prb: int

    def __post_init__(self) -> None:
        if 12 * self.n_prb > self.ofdm.n_subcarriers:
            raise ValueError(f"link.n_prb = {self.n_prb}: the band has {self.ofdm.n_subcarriers // 12} PRBs")

    @property
    def guards(self) -> tuple[int, int]:
        left = (self.ofdm.fft_size - self.ofdm.n_subcarriers) // 2
        return left, self.ofdm.fft_size - self.ofdm.n_subcarriers - left

    def data_mask(self) -> np.ndarray:
        """(n_symbols, n_sc) bool: the data resource elements (``n_prb`` PRBs mid-band, not pilots)."""
        o = self.ofdm
        first = (o.n_subcarriers // 12 - self.n_prb) // 2 * 12
        mask = np.zeros((o.n_symbols, o.n_subcarriers), bool)
        mask[:, first:first + 12 * self.n_prb] = True
        mask[o.dmrs_symbol, o.pilot_indices] = False
        return mask

    def h_freq(self, h: Tensor) -> Tensor:
        """The channel on the used subcarriers (B, n_sc) as Sionna's ``h_freq`` of the slot:
        [B, 1, 1, 1, 1, n_symbols, fft_size], zero on the guards, the same on every symbol."""
        o, (left, _) = self.ofdm, self.guards
        full = h.new_zeros(h.shape[0], o.fft_size)
        full[:, left:left + o.n_subcarriers] = h
        return full[:, None, None, None, None, None, :].expand(h.shape[0], 1, 1, 1, 1, o.n_symbols, o.fft_size)

    def resource_grid(self, seed: int):
        """Sionna's ``ResourceGrid``: every non-data element is in the pilot pattern, the pilots
        seeded unit-power QPSK, the rest zero."""
        from sionna.phy.ofdm import PilotPattern, ResourceGrid

        o = self.ofdm
        reserved = ~self.data_mask()
        pilots = np.zeros((o.n_symbols, o.n_subcarriers), np.complex64)
        bits = np.random.default_rng(seed).integers(0, 2, (2, o.n_pilots)) * 2 - 1
        pilots[o.dmrs_symbol, o.pilot_indices] = (bits[0] + 1j * bits[1]) / math.sqrt(2)
        pattern = PilotPattern(torch.as_tensor(reserved[None, None]),
                               torch.as_tensor(pilots[reserved][None, None]), normalize=False)
        return ResourceGrid(num_ofdm_symbols=o.n_symbols, fft_size=o.fft_size,
                            subcarrier_spacing=o.subcarrier_spacing_hz, num_guard_carriers=self.guards,
                            pilot_pattern=pattern)


def mcs(mcs_table: int, mcs_index: int) -> tuple[int, float]:
    """(bits per symbol, target code rate) of a 38.214 PUSCH MCS."""
    from sionna.phy.nr.utils import decode_mcs_index

    m, r = decode_mcs_index(mcs_index, mcs_table, is_pusch=True)
    return int(m), float(r)


def mcs_name(mcs_table: int, mcs_index: int) -> str:
    m, r = mcs(mcs_table, mcs_index)
    return f"{ {2: 'qpsk', 4: '16qam', 6: '64qam', 8: '256qam'}.get(m, f'qm{m}') }_r{r:.2f}".replace(" ", "")


class GridLink:
    """Transmitter, channel and one receiver per method for one (target, MCS); decodes batches.

    The interface :func:`chanest.studies.link.simulate_curve` drives: ``lp`` and ``decode``.
    """

    def __init__(self, ofdm: OFDMConfig, lp: GridLinkParams, mcs_index: int, sampler: ChannelSampler,
                 estimators: dict[str, Estimate], err_var: dict[str, ErrorVariance], seed_key: tuple[int, ...]):
        from sionna.phy.channel import ApplyOFDMChannel
        from sionna.phy.mapping import Demapper, Mapper
        from sionna.phy.mimo import StreamManagement
        from sionna.phy.nr import TBDecoder, TBEncoder
        from sionna.phy.nr.utils import calculate_tb_size
        from sionna.phy.ofdm import LMMSEEqualizer, ResourceGridMapper

        self.ofdm, self.lp, self.sampler, self.seed_key = ofdm, lp, sampler, seed_key
        self.slot = SlotGrid(ofdm, lp.n_prb)
        self.rg = self.slot.resource_grid(lp.seed)
        bits, rate = mcs(lp.mcs_table, mcs_index)
        self.name = mcs_name(lp.mcs_table, mcs_index)
        n_coded = int(self.rg.num_data_symbols) * bits
        tb_size = int(calculate_tb_size(bits, rate, num_coded_bits=n_coded, return_cw_length=False)[0])
        self.encoder = TBEncoder(target_tb_size=tb_size, num_coded_bits=n_coded, target_coderate=rate,
                                 num_bits_per_symbol=bits, channel_type="PUSCH")
        self.decoder = TBDecoder(self.encoder, num_bp_iter=lp.bp_iterations, cn_update=lp.cn_update)
        self.mapper, self.demapper = Mapper("qam", bits), Demapper("app", "qam", bits)
        self.rg_mapper = ResourceGridMapper(self.rg)
        self.equalizer = LMMSEEqualizer(self.rg, StreamManagement(np.ones((1, 1), int), 1))
        self.channel = ApplyOFDMChannel()
        self.estimators = {m: ChanestEstimator(self.rg, estimators[m], err_var[m], channel_power=1.0)
                           for m in estimators}

    @property
    def tb_size(self) -> int:
        return int(self.encoder.tb_size)

    def batch(self, point: int, index: int):
        """Batch ``index`` at lattice point ``point``, identical for every method: (channels,
        received y, no)."""
        from sionna.phy import config as sionna_config

        seeds = np.random.SeedSequence([*self.seed_key, point + 1000, index]).generate_state(3)
        sionna_config.seed = int(seeds[0])  # the noise
        b = self.lp.batch_size
        chan = self.sampler.sample(b, 0.0, torch.Generator().manual_seed(int(seeds[1])))
        info = torch.randint(0, 2, (b, 1, self.encoder.k), generator=torch.Generator().manual_seed(int(seeds[2])))
        x = self.rg_mapper(self.mapper(self.encoder(info.float()))[:, :, None])
        no = torch.tensor(10.0 ** (-point * SNR_STEP_DB / 10.0), dtype=torch.float32)
        return chan, self.channel(x, self.slot.h_freq(chan.h), no), no, info

    @torch.inference_mode()
    def decode(self, method: str, point: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(errors (B,) bool, pdp_index (B,)) of batch ``index`` at ``point`` with ``method``."""
        chan, y, no, info = self.batch(point, index)
        if method == "perfect":
            shape = (len(chan), 1, 1, 1, 1, self.ofdm.n_symbols, self.ofdm.n_subcarriers)
            h_hat = chan.h[:, None, None, None, None, None, :].expand(shape)
            err_var = torch.zeros(())
        else:
            est = self.estimators[method]
            est.context = chan
            h_hat, err_var = est(y, no)
        x_hat, no_eff = self.equalizer(y, h_hat, err_var, no)  # [B, 1 tx, 1 stream, data REs]
        bits_hat, crc = self.decoder(self.demapper(x_hat, no_eff)[:, 0])  # [B, 1, k], [B, 1]
        wrong = ~crc[:, 0].bool() | (bits_hat[:, 0] != info[:, 0]).any(-1)
        return wrong.cpu().numpy(), chan.pdp_index.cpu().numpy()


def start_snr_db(mcs_table: int, mcs_index: int) -> float:
    """Where a curve's walk starts: 4 dB above the Shannon SNR of the MCS's spectral efficiency."""
    bits, rate = mcs(mcs_table, mcs_index)
    return round(10 * math.log10(2 ** (bits * rate) - 1) + 4.0)


# --------------------------------------------------------------------------------------------
# One target: every method x MCS curve, in one-thread worker processes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridLinkTask:
    """Everything a worker needs for the curves of one target (paths relative to the pipeline)."""

    target: str
    ofdm: OFDMConfig
    normalisation: str
    params: GridLinkParams
    nomp: object  # NOMPConfig
    processed: str = "data/processed/targets"
    base: str = "models/base"
    lora: str = "models/lora"


_WORKER: dict = {}


def estimators(task: GridLinkTask, device: torch.device) -> dict[str, Estimate]:
    """Every method of ``task`` but ``perfect`` as an :data:`Estimate` on a :class:`ChannelBatch`."""
    from chanest.estimators.checkpoint import load_estimator
    from chanest.estimators.lora import merged_path
    from chanest.estimators.nomp import NOMP
    from chanest.evaluation.evaluate import scenario_methods

    ofdm = task.ofdm
    models = {name: load_estimator(directory, device).eval()
              for name, directory in (("base", task.base), ("lora", merged_path(f"{task.lora}/{task.target}").parent))
              if name in task.params.methods}
    methods = scenario_methods(ofdm, task.processed, task.target, device, NOMP(ofdm, task.nomp), models)
    return {m: methods[m] for m in task.params.methods if m != "perfect"}


def _init_worker(task: GridLinkTask) -> None:
    from sionna.phy import config as sionna_config

    from chanest.channel import data
    from chanest.training.train import resolve_device
    from chanest.utils.cli import setup_logging, tune_malloc

    tune_malloc()
    setup_logging()
    torch.set_num_threads(1)
    device = resolve_device(task.params.device)
    sionna_config.device = str(device)
    ofdm, norm, lp = task.ofdm, task.normalisation, task.params
    test = data.sampler(task.processed, [task.target], "test", ofdm, norm, device)
    val = data.sampler(task.processed, [task.target], "val", ofdm, norm, device)
    methods = estimators(task, device)
    err_var = {m: calibrate(f, val, CALIBRATION_SNR_DB, lp.calibration_samples, lp.seed)
               for m, f in methods.items()}
    _WORKER.update(task=task, test=test, methods=methods, err_var=err_var, links={})


def _link(mcs_index: int) -> GridLink:
    links, task = _WORKER["links"], _WORKER["task"]
    if mcs_index not in links:
        lp = task.params
        key = (lp.seed, name_key(task.target), lp.mcs_table, mcs_index)
        links[mcs_index] = GridLink(task.ofdm, lp, mcs_index, _WORKER["test"], _WORKER["methods"],
                                    _WORKER["err_var"], key)
    return links[mcs_index]


def _run_curve(job: tuple[int, str]) -> dict:
    mcs_index, method = job
    link = _link(mcs_index)
    t0 = time.perf_counter()
    blocks: Blocks = simulate_curve(link, method, start_snr_db(link.lp.mcs_table, mcs_index))
    wall = time.perf_counter() - t0
    log.info("%s %s %s: %d blocks at %d SNR points in %.0f s (%.1f blocks/s)", _WORKER["task"].target,
             link.name, method, len(blocks.error), len(set(blocks.snr_db)), wall, len(blocks.error) / wall)
    return {"mcs": link.name, "mcs_index": mcs_index, "method": method, "tb_size": link.tb_size,
            "wall_s": round(wall, 1), **dataclasses.asdict(blocks)}


def run_target(task: GridLinkTask) -> list[dict]:
    """Every (MCS, method) curve of one target (records as :func:`chanest.studies.link_run.save` takes)."""
    lp = task.params
    jobs = sorted(((m, method) for m in lp.mcs_index for method in lp.methods), key=lambda j: -j[0])
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, min(lp.workers, len(jobs))), mp_context=ctx,
                             initializer=_init_worker, initargs=(task,)) as pool:
        return list(pool.map(_run_curve, jobs))


def error_variance_check(estimate: Estimate, err_var: ErrorVariance, sampler: ChannelSampler,
                         snr_db: tuple[float, ...], n_per_snr: int, seed: int) -> list[dict]:
    """Reported against measured error variance on ``sampler`` (held-out channels): per SNR the
    mean of the reported ``err_var`` and the mean squared error, per resource element."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    with torch.inference_mode():
        for s in snr_db:
            b = sampler.sample(n_per_snr, float(s), g)
            measured = (estimate(b).to(b.h.dtype) - b.h).abs().pow(2).double().mean()
            power = b.h.abs().pow(2).double().mean(-1)
            reported = (err_var(b.snr_db).double() * power[:, None]).mean()
            rows.append({"snr_db": float(s), "reported": float(reported), "measured": float(measured),
                         "ratio": round(float(reported / measured), 4)})
    return rows
