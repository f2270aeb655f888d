"""Entry-point helpers for the stage scripts: logging, params, and clean failure."""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import sys
import threading
from collections.abc import Callable

from chanest.errors import CheckpointError, InputError, MissingInputError
from chanest.utils import cpu, imports

#: The project's own input errors (params, PDP files, checkpoints, stale or missing outputs of an
#: earlier stage), reported in one line without a traceback. Any other exception is a defect of
#: the code and shows its traceback.
INPUT_ERRORS: tuple[type[BaseException], ...] = (InputError, CheckpointError, MissingInputError)


def setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("CHANEST_LOG", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )


def tune_malloc() -> None:
    """Keep freed memory in glibc's heap instead of returning it to the system.

    A training step allocates and frees the same large buffers (the complex128 grid-LMMSE
    matrices are MiB each); above glibc's default thresholds each one is a fresh ``mmap`` whose
    pages the kernel zeroes again, which cost a one-thread training ~25% of its time in the
    kernel (measured: 8.3 s of 37 s; 0.9 s with this). Numbers are unchanged. No-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_mmap_threshold, 1 << 30)


def run(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; an input error exits 1 with its message, no traceback. A stage whose
    ``main`` returns ends through :func:`finish`."""
    tune_malloc()
    setup_logging()
    if "torch" in sys.modules:  # a stage that computes with torch imported it already
        cpu.warm_up()
    imports.resume_after_imports()  # the stage's imports ran without the garbage collector
    try:
        main()
    except INPUT_ERRORS as err:
        logging.getLogger("chanest").error("%s: %s", type(err).__name__, err)
        sys.exit(1)
    finish()


def finish() -> None:
    """End a stage whose outputs are written: the exit handlers run and the standard streams are
    flushed, as at any exit, then the process ends without CPython's teardown of its modules.

    That teardown frees every module object and costs a stage 0.5 s after ``import torch`` and
    1.3 s after ``import peft`` (which brings in transformers, sympy and torch's compiler) on 2
    cores, about a second of each of the nine processes of a ``dvc exp run -S lora.r``. Nothing is
    lost by skipping it: every output is written to a temporary file and renamed into place before
    ``main`` returns. The process exits normally where that does more than free memory: under a
    profiler or tracer (``python -m cProfile``, coverage), which write their data then, and while
    another non-daemon Python thread runs, which a normal exit waits for. Daemon threads, which a
    normal exit does not wait for either, do not count (tqdm's monitor, which the transfer stages'
    libraries start, is one).
    """
    if sys.getprofile() is not None or sys.gettrace() is not None or _working_threads():
        return
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _working_threads() -> bool:
    """Whether a non-daemon thread other than this one is alive."""
    return any(t is not threading.current_thread() and not t.daemon for t in threading.enumerate())
