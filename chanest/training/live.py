"""Training metrics the DVC way: a thin `dvclive <https://dvc.org/doc/dvclive>`_ logger.

A training stage opens one :class:`TrainingLog` on its directory under ``reports/live/``
(``train_base``, ``transfer_<Target>``) and passes :meth:`TrainingLog.logger` to
:func:`chanest.training.train.train` as ``log_step``. dvclive writes there:

- ``plots/metrics/<name>.tsv``: one row (``step``, value) per validation step for ``train_loss``,
  ``lr``, ``val_nmse_db`` (mean over the val scenarios) and ``<Scenario>/val_nmse_db``;
- ``metrics.json``: the latest value of each (rewritten at every validation step, so ``dvc exp show``
  lists a running training) and, at the end, :meth:`TrainingLog.finish`'s summary: ``best_step``,
  ``best_val_nmse_db``, ``steps``, ``wall_s``, ``samples_per_s``.

A second run in the same directory logs under a prefix: a transfer's full fine-tuning reference
writes ``full_ft/val_nmse_db`` etc. (``plots/metrics/full_ft/*.tsv``, ``metrics.json`` key ``full_ft``),
its from-scratch reference the same under ``scratch/``.

dvc.yaml declares these files itself (``metrics:`` and ``plots:``, ``cache: false``), so dvclive is
configured to stay out of the pipeline's way: it never writes a ``dvc.yaml`` (``dvcyaml=False``),
makes no report, saves no experiment, monitors nothing, and never contacts DVC Studio
(``DVC_STUDIO_OFFLINE`` is set). :meth:`Live.next_step` and :meth:`Live.end` are not called: besides
writing the summary (done here with :meth:`Live.make_summary`) they signal VS Code through
``.dvc/tmp`` and, under ``dvc exp run``, ``git add`` untracked files. A resumed training replays its
stored history through the logger (see :func:`chanest.training.train.train`), so ``Live`` always starts from
an empty directory. Nothing here draws random numbers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from chanest.utils import imports

LIVE = Path("reports/live")


class TrainingLog:
    """One dvclive ``Live`` on ``directory`` (emptied first); loggers for one or more training runs."""

    def __init__(self, directory: str | os.PathLike):
        os.environ["DVC_STUDIO_OFFLINE"] = "true"  # read by dvclive's Studio client: never post
        with imports.collector_paused():
            from dvclive import Live

        logging.getLogger("dvclive").setLevel(logging.WARNING)  # not its random experiment name
        self.live = Live(dir=os.fspath(directory), resume=False, report=None, save_dvc_exp=False,
                         dvcyaml=False, monitor_system=False)

    @property
    def dir(self) -> Path:
        return Path(self.live.dir)

    def logger(self, prefix: str = "") -> Callable[[dict], None]:
        """A ``log_step`` for :func:`chanest.training.train.train`; metric names start with ``prefix``."""

        def log_step(entry: dict) -> None:
            self.live.step = int(entry["step"])
            for key in ("train_loss", "lr", "val_nmse_db"):
                self.live.log_metric(prefix + key, float(entry[key]))
            for scenario, value in entry.get("scenarios", {}).items():
                self.live.log_metric(f"{prefix}{scenario}/val_nmse_db", float(value))
            self.live.make_summary()

        return log_step

    def finish(self, result, prefix: str = "") -> None:
        """Add a :class:`chanest.training.train.TrainResult`'s summary to ``metrics.json``."""
        summary = {
            "best_step": int(result.best_step),
            "best_val_nmse_db": round(float(result.best_val_db["mean"]), 4),
            "steps": int(result.steps),
            "wall_s": round(float(result.wall_s), 1),
            "samples_per_s": round(float(result.samples_per_s), 1),
        }
        for key, value in summary.items():
            self.live.log_metric(prefix + key, value, plot=False)
        self.live.make_summary()
