"""Throughput of :meth:`ChannelSampler.sample` against the per-sample numpy reference.

    python benchmarks/bench_synth.py --profile paper [--batch 256] [--json]

Prints one JSON object (one line with ``--json``, indented otherwise): samples/s of the batched
sampler (median over repeats, after warm-up), samples/s of
:func:`chanest.synth.reference_synthesis_numpy` in the same process, their ratio, and the
setting (profile, batch, torch threads, device, 1-minute load average before and after: on a
shared machine other processes' load slows the 2-thread sampler far more than the 1-thread
reference, so a ratio measured under load understates it).
PDPs: ``../shared/pdp-nyusim-28ghz/PDP_InF_Los.mat`` (relative to the repository root) if it
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

from chanest.ofdm import OFDMConfig  # noqa: E402
from chanest.pdp import PDPSet, read_mat  # noqa: E402
from chanest.synth import (  # noqa: E402
    ChannelSampler,
    exponential_pdp_set,
    reference_synthesis_numpy,
)

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
PDP_FILE = ROOT.parent / "shared" / "pdp-nyusim-28ghz" / "PDP_InF_Los.mat"


def load_pdps() -> tuple[PDPSet, str]:
    """The benchmark's PDPs and a word on where they came from."""
    if PDP_FILE.exists():
        return PDPSet.from_pdps("InF_Los", read_mat(PDP_FILE)).normalised(), str(PDP_FILE.name)
    rng = np.random.default_rng(0)
    return exponential_pdp_set(1000, 20, (20e-9, 200e-9), rng), "synthetic-exponential-20-taps"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_sampler(
    sampler: ChannelSampler, batch: int, repeats: int, min_s: float, device: torch.device
) -> tuple[float, float]:
    """Median samples/s over ``repeats`` runs of at least ``min_s`` seconds; and ms per batch."""
    generator = torch.Generator(device=device).manual_seed(0)
    for _ in range(3):  # warm-up
        sampler.sample(batch, (-5.0, 35.0), generator)
    _sync(device)
    start = time.perf_counter()
    sampler.sample(batch, (-5.0, 35.0), generator)
    _sync(device)
    calls = max(1, int(min_s / max(time.perf_counter() - start, 1e-6)))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            sampler.sample(batch, (-5.0, 35.0), generator)
        _sync(device)
        rates.append(calls * batch / (time.perf_counter() - start))
    rate = statistics.median(rates)
    return rate, 1e3 * batch / rate


def time_reference(pdps: PDPSet, ofdm: OFDMConfig, repeats: int, min_s: float) -> float:
    """Median samples/s of the per-sample numpy reference."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        reference_synthesis_numpy(pdps, ofdm, 10.0, rng)
    rates = []
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_s or count < 200:
            reference_synthesis_numpy(pdps, ofdm, float(rng.uniform(-5.0, 35.0)), rng)
            count += 1
        rates.append(count / elapsed)
    return statistics.median(rates)


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
    log.info("timing ChannelSampler.sample (batch %d, %s) ...", args.batch, device)
    rate, ms_per_batch = time_sampler(sampler, args.batch, args.repeats, args.min_seconds, device)
    log.info("timing the per-sample reference ...")
    ref_rate = time_reference(pdps, ofdm, max(3, args.repeats // 2), args.min_seconds)
    result = {
        "profile": args.profile,
        "batch": args.batch,
        "samples_per_s": round(rate, 1),
        "reference_samples_per_s": round(ref_rate, 1),
        "ratio": round(rate / ref_rate, 2),
        "ms_per_batch": round(ms_per_batch, 3),
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
