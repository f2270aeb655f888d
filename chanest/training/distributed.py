"""Multi-process data-parallel training (``torch.distributed``, DDP): the few helpers the stages need.

A stage runs its training inside :func:`processes`, which with ``nproc: N > 1`` calls
:func:`relaunch`: outside ``torchrun`` it re-executes itself as
``torchrun --standalone --nproc_per_node N -m <module> <args>`` and exits with torchrun's status,
so ``dvc.yaml``'s ``cmd`` stays ``python -m stages.<stage>``.
Inside torchrun (``LOCAL_RANK`` is set) it returns, and :func:`init` joins the process group:
backend ``gloo`` on the CPU, ``nccl`` on CUDA with each rank on its own device ``cuda:LOCAL_RANK``.

The division of labour (see :func:`chanest.training.train.train`): every rank synthesises the same global
batch from the same seeded generator and trains on its own contiguous shard; DDP averages the
gradients, so a step equals the one-process step on the global batch up to float reduction order.
Rank 0 alone validates, checkpoints and writes outputs; the others wait for it at barriers.
With ``nproc: 1`` none of this runs and training is exactly the single-process loop.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.distributed as dist

from chanest.errors import ParamsError

log = logging.getLogger(__name__)


def launched() -> bool:
    """True inside a ``torchrun`` worker (it sets ``LOCAL_RANK``)."""
    return "LOCAL_RANK" in os.environ


def relaunch(nproc: int, module: str, args: Sequence[str] = (), key: str = "nproc") -> None:
    """Re-run ``python -m module args`` under ``torchrun`` with ``nproc`` processes; never returns.

    Returns at once (doing nothing) when ``nproc == 1`` or when already a torchrun worker.
    ``key`` names the param in errors. The exit status is torchrun's (non-zero if any rank failed).
    """
    if nproc < 1:
        raise ParamsError(f"params: {key} = {nproc} must be >= 1")
    if nproc == 1 or launched():
        return
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", module, *args]
    log.info("%s = %d: relaunching under torchrun: %s", key, nproc, " ".join(cmd[1:]))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_process(nproc))}
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(subprocess.run(cmd, env=env).returncode)


def threads_per_process(nproc: int) -> int:
    """CPU threads each of ``nproc`` processes gets: ``max(1, cores // nproc)`` (no oversubscription)."""
    return max(1, (os.cpu_count() or 1) // nproc)


def init(device_name: str = "auto") -> torch.device:
    """Join the process group if a torchrun worker (idempotent); return this rank's device.

    ``device_name``: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:K``. Under
    torchrun a CUDA rank always uses ``cuda:LOCAL_RANK`` (backend nccl); CPU ranks use gloo and
    ``threads_per_process(world)`` torch threads. Outside torchrun: the plain device, no group.
    """
    name = device_name
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if not launched():
        return device
    world = int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        local = int(os.environ["LOCAL_RANK"])
        if local >= torch.cuda.device_count():
            raise ValueError(f"nproc = {os.environ.get('LOCAL_WORLD_SIZE', world)} processes on this machine, "
                             f"but only {torch.cuda.device_count()} CUDA device(s): one process per GPU")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(threads_per_process(world))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
        log.info("rank %d of %d joined (%s, device %s)", rank(), world, backend, device)
        if not is_main():  # one process speaks for the run
            logging.getLogger().setLevel(logging.WARNING)
    return device


def cleanup() -> None:
    """Leave the process group (after a final barrier), if in one."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextmanager
def processes(nproc: int, device_name: str, module: str, args: Sequence[str] = (),
              key: str = "nproc") -> Iterator[torch.device]:
    """A training stage's ``nproc`` processes: :func:`relaunch` (never returns when it re-runs the
    stage under torchrun), :func:`init`, and :func:`cleanup` on exit; yields this rank's device.

    >>> with processes(cfg.nproc, cfg.device, "stages.train_base", key="base.nproc") as device:
    ...     run(device)
    """
    relaunch(nproc, module, args, key)
    device = init(device_name)
    try:
        yield device
    finally:
        cleanup()


def active() -> bool:
    """True when training with more than one process."""
    return dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one that validates and writes."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if dist.is_initialized():
        dist.barrier()


def mean(value: float, device: torch.device) -> float:
    """The mean of a scalar over ranks (the value itself in a single process)."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t) / world_size()


def shard(n: int) -> slice:
    """This rank's contiguous slice of a global batch of ``n`` (``n`` divisible by the world size)."""
    world = world_size()
    if n % world:
        raise ValueError(f"batch of {n} does not split over {world} processes")
    size = n // world
    return slice(rank() * size, (rank() + 1) * size)
