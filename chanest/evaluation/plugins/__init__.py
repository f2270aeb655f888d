"""Methods of one's own: a module in this folder is a classical estimator in every report.

A module here (any name not starting with ``_``) defines

- ``NAME``: the method's name in the reports (letters, digits and ``_``; not a built-in one),
- ``LABEL``, ``COLOR`` (``#rrggbb``) and ``MARKER`` (a matplotlib marker): its row and style,
- ``build(context) -> estimator``: ``context`` is a :class:`~chanest.evaluation.evaluate.Context`
  (the numerology ``ofdm`` and the scenario's statistics LMMSE ``stat``); the estimator maps a
  :class:`~chanest.channel.sampler.ChannelBatch` to its (B, n_subcarriers) complex estimate.

Nothing else is edited: the `eval_base` stages evaluate it on every scenario's fixed test set
(the same samples as every other method), `report` gives it its rows and gaps to the genie with
paired intervals, `plot` draws it, and the studies that evaluate the classical methods (the
operating points) include it. Every stage that does so depends on ``chanest/evaluation``, so
adding or editing a module here re-runs exactly those stages. Import heavy packages (torch)
inside ``build``: the `report` and `plot` stages read the table without them.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def discover() -> list[ModuleType]:
    """The modules of this folder, by name."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"{__name__}.{n}") for n in names]
