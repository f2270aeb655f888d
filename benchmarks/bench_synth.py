"""Throughput of :meth:`ChannelSampler.sample` against the per-sample numpy reference.

    python benchmarks/bench_synth.py --profile paper [--batch 256] [--json]

Prints one JSON object (one line with ``--json``, indented otherwise): samples/s of the batched
sampler and of :func:`chanest.channel.sampler.reference_synthesis_numpy` in the same process (medians over
repeats, after warm-up; the two are timed in alternation, and ``ratio`` is the median of the
per-repeat ratios, with their range), and the setting (profile, batch, torch threads, device,
1-minute load average before and after: on a shared machine other processes' load slows the
2-thread sampler far more than the 1-thread reference, so a ratio measured under load
understates it).
PDPs: ``data/nyusim-28ghz/PDP_InF_Los.mat`` (the committed research files) if it
exists, else seeded synthetic exponential PDPs of 20 taps.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chanest.channel.ofdm import OFDMConfig  # noqa: E402
from chanest.channel.pdp import PDPSet, read_mat  # noqa: E402
from chanest.channel.reference import exponential_pdp_set, reference_synthesis_numpy  # noqa: E402
from chanest.channel.sampler import ChannelSampler  # noqa: E402

log = logging.getLogger("bench_synth")

PROFILES: dict[str, OFDMConfig] = {
    "cpu": OFDMConfig(),
    "paper": OFDMConfig(
        subcarrier_spacing_hz=120e3,
        n_subcarriers=3072,
        fft_size=4096,
        cp_s=590e-9,
        dmrs_symbol=0,
        pilot_spacing=6,
        delay_offset_max_cp=0.2,
    ),
}
PDP_FILE = ROOT / "data" / "nyusim-28ghz" / "PDP_InF_Los.mat"


def load_pdps() -> tuple[PDPSet, str]:
    """The benchmark's PDPs and a word on where they came from."""
    if PDP_FILE.exists():
        return PDPSet.from_pdps("InF_Los", read_mat(PDP_FILE)).normalised(), str(PDP_FILE.name)
    rng = np.random.default_rng(0)
    return exponential_pdp_set(1000, 20, (20e-9, 200e-9), rng), "synthetic-exponential-20-taps"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SamplerTimer:
    """Times :meth:`ChannelSampler.sample`: ``run()`` returns samples/s of one repeat."""

    def __init__(self, sampler: ChannelSampler, batch: int, min_s: float, device: torch.device):
        self.sampler, self.batch, self.device = sampler, batch, device
        self.generator = torch.Generator(device=device).manual_seed(0)
        for _ in range(3):  # warm-up
            self._call()
        _sync(device)
        start = time.perf_counter()
        self._call()
        _sync(device)
        self.calls = max(1, int(min_s / max(time.perf_counter() - start, 1e-6)))

    def _call(self) -> None:
        self.sampler.sample(self.batch, (-5.0, 35.0), self.generator)

    def run(self) -> float:
        start = time.perf_counter()
        for _ in range(self.calls):
            self._call()
        _sync(self.device)
        return self.calls * self.batch / (time.perf_counter() - start)


class ReferenceTimer:
    """Times :func:`reference_synthesis_numpy`: ``run()`` returns samples/s of one repeat."""

    def __init__(self, pdps: PDPSet, ofdm: OFDMConfig, min_s: float):
        self.pdps, self.ofdm, self.min_s = pdps, ofdm, min_s
        self.rng = np.random.default_rng(0)
        for _ in range(20):  # warm-up
            reference_synthesis_numpy(pdps, ofdm, 10.0, self.rng)

    def run(self) -> float:
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < self.min_s or count < 200:
            snr = float(self.rng.uniform(-5.0, 35.0))
            reference_synthesis_numpy(self.pdps, self.ofdm, snr, self.rng)
            count += 1
        return count / elapsed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.5, help="per repeat")
    parser.add_argument("--json", action="store_true", help="one-line JSON only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO, stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    ofdm = PROFILES[args.profile]
    pdps, source = load_pdps()
    load_before = os.getloadavg()[0]
    sampler = ChannelSampler(pdps, ofdm, device=device)
    log.info("timing ChannelSampler.sample (batch %d, %s) and the reference, interleaved ...",
             args.batch, device)
    fast = SamplerTimer(sampler, args.batch, args.min_seconds, device)
    slow = ReferenceTimer(pdps, ofdm, args.min_seconds)
    rates, ref_rates = [], []
    for _ in range(args.repeats):  # alternate, so that both see the same machine load
        rates.append(fast.run())
        ref_rates.append(slow.run())
    rate, ref_rate = statistics.median(rates), statistics.median(ref_rates)
    ratios = [r / q for r, q in zip(rates, ref_rates)]
    result = {
        "profile": args.profile,
        "batch": args.batch,
        "samples_per_s": round(rate, 1),
        "reference_samples_per_s": round(ref_rate, 1),
        "ratio": round(statistics.median(ratios), 2),
        "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
        "ms_per_batch": round(1e3 * args.batch / rate, 3),
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "n_subcarriers": ofdm.n_subcarriers,
        "n_pilots": ofdm.n_pilots,
        "pdps": source,
        "max_taps": sampler.n_taps,
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "torch": torch.__version__,
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
