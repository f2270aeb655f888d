"""Importing large libraries with CPython's cyclic garbage collector paused.

Importing torch, transformers (through peft) or dvclive creates a few hundred thousand
long-lived objects and almost no garbage, yet every 700 new objects start a collection, and the
full ones traverse everything imported so far. In a LoRA transfer stage that was 0.9 s of the
4.0 s its imports take on 2 cores (torch, chanest, dvclive, peft: 3.1 s with the collector
paused); it is paid again by every stage process of every pipeline. So:

- a stage started as ``python -m stages.<name>`` pauses the collector before its first import
  (``stages/__init__.py``), and :func:`chanest.utils.cli.run` freezes what was imported
  (``gc.freeze``: later collections skip it) and resumes collection before the stage's work;
- chanest's own deferred imports of peft and dvclive run under :func:`collector_paused`.

Collection is unchanged wherever chanest computes, and so are all numbers.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (an import); then restore it as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def resume_after_imports() -> None:
    """Freeze every object alive now (the modules imported so far) and turn collection on."""
    gc.freeze()
    gc.enable()
