"""A tiny base training whose weights' SHA-256 shows which CPU path a machine took.

Run as a script (``python tests/cpu_path_probe.py``) so that the environment it starts with is
what decides the path; prints the hash of the trained weights (and the training rate, to stderr).
Used by ``tests/test_cpu_path.py``.
"""

from __future__ import annotations

import hashlib
import sys
import time

import chanest  # noqa: F401  (first: pins the CPU path before torch loads)
import torch

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.sampler import ChannelSampler
from chanest.estimators.model import ChannelEstimator, EstimatorConfig
from chanest.training.train import TrainConfig, make_val_sets, train
from chanest.utils import cpu
from conftest import exponential_pdps  # tests/ is the script's folder, first on sys.path


def main() -> None:
    cpu.warm_up()
    ofdm = OFDMConfig(n_subcarriers=240, fft_size=256)
    cfg = EstimatorConfig(n_subcarriers=ofdm.n_subcarriers, pilot_indices=tuple(ofdm.pilot_indices),
                          d_model=32, n_heads=2, n_layers=2, d_ff=64, residual="delay_prior",
                          prior_max_delay_s=ofdm.cp_s + ofdm.max_delay_offset_s)
    torch.manual_seed(0)
    model = ChannelEstimator(cfg)
    run = TrainConfig(steps=40, batch_size=32, lr=3.0e-3, warmup_steps=5, val_every=20, val_samples=32,
                      checkpoint_every=40, log_every=1000, device="cpu")
    val = make_val_sets({"x": ChannelSampler(exponential_pdps(20, seed=2), ofdm)}, run, seed=9)
    t0 = time.perf_counter()
    train(model, ChannelSampler(exponential_pdps(200, seed=1), ofdm), val, run, seed=3)
    rate = run.steps * run.batch_size / (time.perf_counter() - t0)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    print(digest.hexdigest())
    print(f"{rate:.1f} samples/s", file=sys.stderr)


if __name__ == "__main__":
    main()
