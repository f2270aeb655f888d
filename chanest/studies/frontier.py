"""The adaptation frontier: quality vs target data and vs trainable weights, per target scenario.

For one target and one budget of target training PDPs (a *cell*, :func:`run_cell`), every method
of :func:`jobs` is trained on the same nested budget subset (:mod:`chanest.training.adapt`): LoRA at each
rank of ``frontier.ranks`` (uniform rank on every ``lora.target_modules``, alpha / r as in the
``lora`` section), full fine-tuning, and the from-scratch reference; each is then evaluated on the
target's fixed test set (:func:`chanest.evaluation.evaluate.test_set`, the one `eval_base` uses). The base
zero-shot and the genie bound come from `eval_base`'s part, so the table compares every method
on identical test samples, paired, with one PDP bootstrap per target
(:mod:`chanest.studies.frontier_table`).

The jobs of a cell run in ``workers`` spawned processes of one thread each: on 2 cores two
one-thread trainings do ~1.25x the work of one two-thread training, and a job's numbers do not
depend on how many workers there are or which one ran it (each job seeds its own generators).
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from chanest.training import adapt
from chanest.channel import data
from chanest.evaluation.evaluate import TestErrors, evaluate, test_set
from chanest.estimators.lora import LoraParams
from chanest.channel.ofdm import OFDMConfig
from chanest.training.train import TrainConfig, make_val_sets, resolve_device
from chanest.utils.params import from_section, get

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class FrontierParams:
    """``frontier`` params: budgets (target train PDPs, ints or ``"all"``), LoRA ranks, workers."""

    budgets: tuple[int | str, ...] = (8, 32, 128, "all")
    ranks: tuple[int, ...] = (1, 4, 16)
    workers: int = 2

    def __post_init__(self) -> None:
        for i, b in enumerate(self.budgets):
            adapt.check_budget(b, f"frontier.budgets[{i}]")
        if len(set(map(str, self.budgets))) != len(self.budgets):
            raise ValueError(f"frontier.budgets has repeats: {list(self.budgets)}")
        if not self.ranks or min(self.ranks) < 1:
            raise ValueError(f"frontier.ranks must be ranks >= 1, got {list(self.ranks)}")
        if self.workers < 1:
            raise ValueError(f"frontier.workers must be >= 1, got {self.workers}")


def frontier_params(params: dict) -> FrontierParams:
    """The ``frontier`` params section as a :class:`FrontierParams`."""
    return from_section(FrontierParams, get(params, "frontier"), "frontier")


@dataclass(frozen=True)
class Job:
    """One adaptation of a cell: ``method`` in :data:`chanest.training.adapt.METHODS`, ``r`` for LoRA."""

    method: str
    r: int | None = None

    @property
    def key(self) -> str:
        return f"lora_r{self.r}" if self.method == "lora" else self.method


def jobs(ranks: tuple[int, ...] | list[int]) -> list[Job]:
    """From scratch (the longest: ``lora.scratch_steps``), LoRA at every rank, full fine-tuning;
    longest first, so that two workers finish together."""
    return [Job("scratch")] + [Job("lora", r) for r in ranks] + [Job("full_ft")]


@dataclass(frozen=True)
class Cell:
    """Everything a worker needs to train and evaluate the jobs of one (target, budget)."""

    target: str
    budget: adapt.Budget
    seed: int
    ofdm: OFDMConfig
    normalisation: str
    lora: LoraParams
    train: TrainConfig
    eval_snr_db: tuple[float, ...]
    eval_n_samples: int
    eval_seed: int
    eval_batch_size: int
    device: str
    processed: str = "data/processed/targets"
    base: str = "models/base"


_WORKER: dict = {}  # the cell's sampler, val and test sets, built once per worker process


def _init_worker(cell: Cell) -> None:
    from chanest.utils.cli import setup_logging, tune_malloc

    tune_malloc()
    setup_logging()
    torch.set_num_threads(1)
    device = resolve_device(cell.device)
    sampler = adapt.target_sampler(cell.processed, cell.target, cell.budget, cell.seed, cell.ofdm,
                                   cell.normalisation, device)
    val = data.samplers(cell.processed, [cell.target], "val", cell.ofdm, cell.normalisation, device)
    test = data.sampler(cell.processed, [cell.target], "test", cell.ofdm, cell.normalisation, device)
    _WORKER.update(cell=cell, device=device, sampler=sampler,
                   val_sets=make_val_sets(val, cell.train, cell.seed + 2),  # as in `transfer`
                   test=test_set(test, cell.eval_snr_db, cell.eval_n_samples, cell.eval_seed))


def _run_job(job: Job) -> tuple[TestErrors, dict]:
    cell, device = _WORKER["cell"], _WORKER["device"]
    lp = adapt.uniform_rank(cell.lora, job.r) if job.method == "lora" else cell.lora
    name = f"{job.key}@{cell.target}/{cell.budget}"
    t0 = time.perf_counter()
    done = adapt.adapt(job.method, cell.base, _WORKER["sampler"], _WORKER["val_sets"], cell.train, lp,
                       cell.seed, device, name=name)
    wall = time.perf_counter() - t0
    model = done.model.eval()
    part = evaluate(cell.target, {job.key: lambda b: model(b.h_ls, b.snr_db)}, _WORKER["test"],
                    cell.eval_batch_size)
    info = {"trainable_parameters": done.trainable_parameters, "wall_s": round(wall, 1),
            "best_step": done.result.best_step, "steps": done.result.steps,
            "val_nmse_db": round(done.result.best_val_db[cell.target], 3)}
    log.info("%s: %d trainable, val %.2f dB, %.0f s", name, info["trainable_parameters"],
             info["val_nmse_db"], wall)
    return part, info


def run_cell(cell: Cell, ranks: tuple[int, ...] | list[int], workers: int) -> TestErrors:
    """Train and evaluate every job of the cell; the per-sample errors of all, one part."""
    todo = jobs(ranks)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(todo))), mp_context=ctx,
                             initializer=_init_worker, initargs=(cell,)) as pool:
        done = list(pool.map(_run_job, todo))
    first = done[0][0]
    out = TestErrors(cell.target, first.index, first.snr_db, first.pdp_index, first.energy)
    n_pdps = len(adapt.target_pdps(cell.processed, cell.target, cell.budget, cell.seed))
    out.meta = {"budget": cell.budget, "target_pdps": n_pdps, "jobs": {}}
    for job, (part, info) in zip(todo, done):
        part.check_same_samples(first, f"frontier job {job.key}")
        out.errors[job.key] = part.errors[job.key]
        out.meta["jobs"][job.key] = {"method": job.method, "r": job.r, **info}
    return out


def cell_path(root: str | Path, target: str, budget: adapt.Budget) -> Path:
    """Where a cell's part lives: ``<root>/<Target>/<budget>.npz``."""
    return Path(root) / target / f"{budget}.npz"
