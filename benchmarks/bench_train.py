"""Training throughput, the time split of one training step, and peak memory (with a batch-256 fit).

    python benchmarks/bench_train.py --profile paper [--batch 8] [--device cpu] [--amp bf16] [--json]

A profile is a params file: ``cpu`` is ``params.yaml``, ``paper`` is ``profiles/paper.yaml``; the
numerology, the estimator and the ``base`` optimisation settings (optimiser, loss, grad clip) come
from it. The PDPs are seeded synthetic exponential ones (20 taps, decay constants 2-20% of the
CP), so no pipeline data is needed.

One step, as :func:`chanest.training.train.train` runs it, timed in phases (milliseconds, medians over
``--steps`` steps after warm-up; each phase in a ``torch.profiler.record_function`` block and, on
CUDA, synchronised at its ends):

- ``synthesis``: :meth:`ChannelSampler.sample` of the batch;
- ``delay_prior``: the delay-prior network (:class:`chanest.estimators.delay_prior.DelayPrior`: periodogram
  features on the delay grid and its convolutions);
- ``grid_lmmse``: the LMMSE on the grid (:class:`chanest.estimators.delay_prior.GridLMMSE`, complex128 solve);
- ``transformer``: the rest of the forward pass (tokens, decoder layers, head) and the loss;
- ``backward``: ``loss.backward()`` (all of the above);
- ``optimizer``: gradient clipping, the optimiser step and zeroing the gradients.

Peak memory at two batch sizes (``--batch`` and half of it), fitted as ``fixed + per_sample * B``
and extrapolated to ``--extrapolate`` (256, the paper batch). CUDA: ``torch.cuda.max_memory_allocated``
(tensors only). CPU: the peak resident set size of a fresh subprocess per batch size (``VmHWM``,
reset at its start through ``/proc/self/clear_refs``, since a forked child inherits its parent's
high-water mark; else ``resource.getrusage``), so ``fixed`` includes the Python and torch runtime
(about 0.2 GiB) and the setup (model, sampler, delay-grid matrices).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import record_function

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chanest import config  # noqa: E402
from chanest.estimators.model import ChannelEstimator, estimator_config, n_parameters  # noqa: E402
from chanest.utils.params import load_params  # noqa: E402
from chanest.channel.sampler import ChannelSampler  # noqa: E402
from chanest.channel.reference import exponential_pdp_set  # noqa: E402
from chanest.training.train import amp_dtype, autocast, loss_fn, make_optimizer, train_config  # noqa: E402

log = logging.getLogger("bench_train")

PROFILES = {"cpu": ROOT / "params.yaml", "paper": ROOT / "profiles" / "paper.yaml"}
PHASES = ("synthesis", "delay_prior", "grid_lmmse", "transformer", "backward", "optimizer")
MIB = 2.0**20


class Bench:
    """A model, sampler and optimiser of one profile, and a timed training step."""

    def __init__(self, profile: str, device: torch.device, amp: str = "off"):
        params = load_params(PROFILES[profile])
        self.ofdm = config.ofdm(params)
        self.cfg = train_config(params, "base")
        self.device = device
        torch.manual_seed(0)
        self.model = ChannelEstimator(estimator_config(params, self.ofdm)).to(device).train()
        cp = self.ofdm.cp_s
        pdps = exponential_pdp_set(1000, 20, (0.02 * cp, 0.2 * cp), np.random.default_rng(0))
        self.sampler = ChannelSampler(pdps, self.ofdm, device=device)
        self.generator = torch.Generator(device=device).manual_seed(0)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = make_optimizer(self.params, self.cfg)
        self.amp = amp_dtype(amp, device)
        self.marks: dict[str, float] = {}
        for name in ("delay_prior", "grid_lmmse"):
            module = getattr(self.model, name, None)
            if module is not None:  # time a sub-module's forward with a pre- and a post-hook
                module.register_forward_pre_hook(self._hook(f"{name}_start"))
                module.register_forward_hook(self._hook(f"{name}_end"))

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _now(self) -> float:
        self._sync()
        return time.perf_counter()

    def _hook(self, mark: str):
        def hook(*_):
            self.marks[mark] = self._now()
        return hook

    def step(self, batch_size: int) -> dict[str, float]:
        """One training step; returns each phase's wall time in milliseconds."""
        self.marks.clear()
        t0 = self._now()
        with record_function("synthesis"):
            batch = self.sampler.sample(batch_size, self.cfg.snr_db, self.generator)
        t1 = self._now()
        with record_function("forward"), autocast(self.amp, self.device):
            est = self.model(batch.h_ls, batch.snr_db)
        loss = loss_fn(self.cfg.loss, est, batch)
        t2 = self._now()
        with record_function("backward"):
            loss.backward()
        t3 = self._now()
        with record_function("optimizer"):
            if self.cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
        t4 = self._now()
        m = self.marks
        prior = m["delay_prior_end"] - m["delay_prior_start"] if "delay_prior_end" in m else 0.0
        solve = m["grid_lmmse_end"] - m["grid_lmmse_start"] if "grid_lmmse_end" in m else 0.0
        ms = {"synthesis": t1 - t0, "delay_prior": prior, "grid_lmmse": solve,
              "transformer": t2 - t1 - prior - solve, "backward": t3 - t2, "optimizer": t4 - t3}
        return {k: 1e3 * v for k, v in ms.items()}


def reset_peak_rss() -> None:
    """Reset this process's peak-RSS counter (Linux >= 4.0; a no-op elsewhere)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mib() -> float:
    """This process's peak resident set size (MiB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_memory_mib(profile: str, device: torch.device, amp: str, batch: int, bench: Bench | None) -> float:
    """Peak memory (MiB) of two training steps at ``batch`` (see the module docstring)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(2):
            bench.step(batch)
        return torch.cuda.max_memory_allocated(device) / MIB
    cmd = [sys.executable, __file__, "--profile", profile, "--device", str(device), "--amp", amp,
           "--threads", str(torch.get_num_threads()), "--memory-only", str(batch)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["peak_rss_mib"])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--batch", type=int, default=None,
                        help="default: the profile's base.batch_size on CUDA; 8 (paper) / 64 (cpu) on CPU")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=("off", "bf16"), default="off")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after 2 warm-up steps)")
    parser.add_argument("--extrapolate", type=int, default=256, help="batch to extrapolate memory to")
    parser.add_argument("--json", action="store_true", help="one-line JSON only")
    parser.add_argument("--memory-only", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO, stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    if args.memory_only:  # a child process: the peak RSS of two steps at this batch
        reset_peak_rss()
        bench = Bench(args.profile, device, args.amp)
        for _ in range(2):
            bench.step(args.memory_only)
        print(json.dumps({"batch": args.memory_only, "peak_rss_mib": round(peak_rss_mib(), 1)}))
        return {}

    batch = args.batch or (load_params(PROFILES[args.profile])["base"]["batch_size"] if device.type == "cuda"
                           else {"paper": 8, "cpu": 64}[args.profile])
    load_before = os.getloadavg()[0]
    small = max(1, batch // 2)
    mem = []
    if device.type != "cuda":  # the CPU's children first, while this process is still small
        log.info("peak memory at batch %d and %d (fresh processes) ...", small, batch)
        mem = [peak_memory_mib(args.profile, device, args.amp, b, None) for b in (small, batch)]
    bench = Bench(args.profile, device, args.amp)
    log.info("%s: %d parameters, batch %d, %s, %d threads", args.profile, n_parameters(bench.model), batch,
             device, torch.get_num_threads())
    for _ in range(2):  # warm-up
        bench.step(batch)
    steps = [bench.step(batch) for _ in range(args.steps)]
    phases = {k: statistics.median(s[k] for s in steps) for k in PHASES}
    step_ms = statistics.median(sum(s.values()) for s in steps)

    if device.type == "cuda":
        mem = [peak_memory_mib(args.profile, device, args.amp, b, bench) for b in (small, batch)]
    per_sample = (mem[1] - mem[0]) / max(batch - small, 1)
    fixed = mem[0] - per_sample * small
    result = {
        "profile": args.profile,
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "amp": "off" if bench.amp is None else args.amp,
        "torch_threads": torch.get_num_threads(),
        "batch": batch,
        "n_subcarriers": bench.ofdm.n_subcarriers,
        "n_pilots": bench.ofdm.n_pilots,
        "delay_grid": bench.model.grid_lmmse.n_grid if hasattr(bench.model, "grid_lmmse") else 0,
        "parameters": n_parameters(bench.model),
        "samples_per_s": round(1e3 * batch / step_ms, 2),
        "step_ms": round(step_ms, 1),
        "phases_ms": {k: round(v, 1) for k, v in phases.items()},
        "phases_share": {k: round(v / step_ms, 3) for k, v in phases.items()},
        "memory": {
            "method": "cuda max_memory_allocated" if device.type == "cuda" else "peak RSS, fresh process",
            "batches": [small, batch],
            "peak_mib": [round(m, 1) for m in mem],
            "fixed_mib": round(fixed, 1),
            "per_sample_mib": round(per_sample, 2),
            f"batch_{args.extrapolate}_mib": round(fixed + per_sample * args.extrapolate, 0),
        },
        "steps": args.steps,
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "torch": torch.__version__,
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
