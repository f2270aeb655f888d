"""One CPU instruction-set path for every process, so that the same params give the same bytes.

torch picks its CPU kernels by what the processor offers: ATen's vectorised kernels (AVX-512 or
AVX2), MKL's BLAS, LAPACK and vector-math code paths, oneDNN's convolutions. Their results differ
in the last bits between paths, and training amplifies last bits into different weights: the same
``dvc repro`` on an AVX-512 machine and an AVX2 machine gives different models and metrics. This
module holds all of them to **AVX2**, which every x86-64 server and desktop of the last decade has
(Intel since Haswell, 2013; AMD since Excavator/Zen), and AVX-512 machines run as well:

- ``ATEN_CPU_CAPABILITY=avx2``: ATen's dispatch to its AVX2 kernels;
- ``MKL_CBWR=AVX2``: MKL's conditional numerical reproducibility branch (one code path for BLAS,
  LAPACK and vector math on every processor that has AVX2); ``MKL_ENABLE_INSTRUCTIONS=AVX2``;
- ``ONEDNN_MAX_CPU_ISA=AVX2`` (and its older name ``DNNL_MAX_CPU_ISA``): oneDNN's kernels.

They are read when those libraries initialise, so :func:`pin` must run before torch computes
anything; ``import chanest`` calls it (before any chanest module imports torch), which puts every
stage, benchmark and test on the path. The pin overrides what the environment says (an outer
``ATEN_CPU_CAPABILITY=avx512`` gives the same bytes); ``CHANEST_CPU_PATH=native`` opts out (each
library's own choice: faster on some machines, bytes that follow the machine). Its cost is
measured in ``benchmarks/bench_train.py --cpu-path``; ``docs/reproducibility.md`` has the numbers.

Imports nothing of chanest (and not torch).
"""

from __future__ import annotations

import os

#: The variables that decide the CPU path, and their pinned values.
PINNED = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "DNNL_MAX_CPU_ISA": "AVX2",
}

#: ``CHANEST_CPU_PATH``: ``avx2`` (default, pinned) or ``native`` (the libraries choose).
SWITCH = "CHANEST_CPU_PATH"
PATHS = ("avx2", "native")


def path() -> str:
    """The CPU path asked for by ``CHANEST_CPU_PATH`` (default ``avx2``)."""
    value = os.environ.get(SWITCH, "avx2").strip().lower() or "avx2"
    if value not in PATHS:
        raise ValueError(f"{SWITCH}={value!r}: expected one of {', '.join(PATHS)}")
    return value


def pin() -> dict[str, str]:
    """Set the pinned variables in this process's environment (children inherit them), unless
    ``CHANEST_CPU_PATH=native``. Returns what was set. Idempotent."""
    if path() == "native":
        return {}
    os.environ.update(PINNED)
    return dict(PINNED)


_warm = False


def warm_up() -> None:
    """One threaded MKL vector-math call before a stage's own work.

    The first threaded MKL vector-math call of a process (torch's float64 ``sin`` / ``exp`` on
    large tensors) now and then returns different last bits under load; later calls do not
    (``docs/reproducibility.md``). The stages make that first call here, on throw-away data: in
    :func:`chanest.utils.cli.run` if the stage has imported torch by then, else before the first
    torch work that needs it (Sionna's PDP draws, :meth:`chanest.channel.sites.Site.load`), so a
    stage that never computes with torch (``report``, ``plot``) does not load it. Idempotent.
    """
    global _warm
    if _warm:
        return
    _warm = True
    import torch

    torch.exp(torch.linspace(0.0, 1.0, 1 << 16, dtype=torch.float64))
