"""Link level, one target at a time: every method x MCS curve of a target in worker processes.

:func:`run_target` fans a target's curves out to one-thread worker processes (each builds its
estimators once), gathers the records and :func:`save` writes them as one ``.npz``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import name_key
from chanest.errors import MissingInputError
from chanest.studies.link import Link, LinkParams, mcs_name, nmse_table, pusch_config, simulate_curve
from chanest.utils.io import write_npz

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# One target: every method x MCS, in worker processes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkTask:
    """Everything a worker needs for the curves of one target."""

    target: str
    ofdm: OFDMConfig
    normalisation: str
    params: LinkParams
    processed: str = "data/processed/targets"
    base: str = "models/base"
    lora: str = "models/lora"


_WORKER: dict = {}


def _init_worker(task: LinkTask) -> None:
    from chanest.channel import data
    from chanest.estimators.checkpoint import load_estimator
    from chanest.utils.cli import setup_logging, tune_malloc
    from chanest.evaluation.evaluate import scenario_methods
    from chanest.estimators.lora import merged_path
    from chanest.training.train import resolve_device

    tune_malloc()
    setup_logging()
    torch.set_num_threads(1)
    from sionna.phy import config as sionna_config

    device = resolve_device(task.params.device)
    sionna_config.device = str(device)
    ofdm, norm = task.ofdm, task.normalisation
    test = data.sampler(task.processed, [task.target], "test", ofdm, norm, device)
    val = data.sampler(task.processed, [task.target], "val", ofdm, norm, device)
    models = {name: load_estimator(directory, device).eval()
              for name, directory in (("base", task.base), ("lora", merged_path(f"{task.lora}/{task.target}").parent))}
    methods = scenario_methods(ofdm, task.processed, task.target, device, models=models)
    grid = np.arange(-10.0, 47.5, 2.5)  # pilot SNR, dB
    err_var = {}
    for name in task.params.methods:
        if name != "perfect":
            table = nmse_table(methods[name], val, grid, 32, task.params.seed)
            err_var[name] = lambda s, t=table: torch.as_tensor(np.interp(s.cpu().numpy(), grid, t))
    _WORKER.update(task=task, test=test, methods=methods, err_var=err_var, links={})


def _link(mcs_index: int) -> Link:
    links, task = _WORKER["links"], _WORKER["task"]
    if mcs_index not in links:
        names = [m for m in task.params.methods if m != "perfect"]
        key = (task.params.seed, name_key(task.target), task.params.mcs_table, mcs_index)
        links[mcs_index] = Link(task.ofdm, task.params, mcs_index, _WORKER["test"],
                                {m: _WORKER["methods"][m] for m in names},
                                {m: _WORKER["err_var"][m] for m in names}, key)
    return links[mcs_index]


def _run_curve(job: tuple[int, str, float]) -> dict:
    mcs_index, method, start_db = job
    link = _link(mcs_index)
    t0 = time.perf_counter()
    blocks = simulate_curve(link, method, start_db)
    wall = time.perf_counter() - t0
    log.info("%s %s %s: %d blocks at %d SNR points in %.0f s (%.1f blocks/s)", _WORKER["task"].target,
             mcs_name(link.pc), method, len(blocks.error), len(set(blocks.snr_db)), wall,
             len(blocks.error) / wall)
    return {"mcs": mcs_name(link.pc), "mcs_index": mcs_index, "method": method,
            "tb_size": int(link.pc.tb_size), "wall_s": round(wall, 1), **dataclasses.asdict(blocks)}


def start_snr_db(mcs_index: int, lp: LinkParams, ofdm: OFDMConfig) -> float:
    """Where the walk of a curve starts: 4 dB above the Shannon SNR of the MCS's spectral efficiency
    (AWGN needs ~2 dB above it at these block lengths; a frequency-selective channel more)."""
    pc = pusch_config(ofdm, lp.mcs_table, mcs_index)
    rate = int(pc.tb.num_bits_per_symbol) * float(pc.tb.target_coderate)
    return round(10 * math.log10(2**rate - 1) + 4.0)


def run_target(task: LinkTask) -> list[dict]:
    """Every (MCS, method) curve of one target; a list of :func:`_run_curve` records."""
    lp = task.params
    jobs = [(m, method, start_snr_db(m, lp, task.ofdm)) for m in lp.mcs_index for method in lp.methods]
    jobs.sort(key=lambda j: -j[0])  # the costlier MCS first, so that the workers finish together
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, min(lp.workers, len(jobs))), mp_context=ctx,
                             initializer=_init_worker, initargs=(task,)) as pool:
        return list(pool.map(_run_curve, jobs))


def save(path: str | os.PathLike, records: list[dict]) -> None:
    """One target's curves as ``.npz``: the blocks of all curves, with a curve id, and their facts."""
    curve = np.concatenate([np.full(len(r["error"]), i) for i, r in enumerate(records)])
    meta = [{k: v for k, v in r.items() if k not in ("snr_db", "pdp_index", "error")} for r in records]
    write_npz(path, curve=curve.astype(np.int64),
              snr_db=np.concatenate([np.asarray(r["snr_db"], dtype=np.float64) for r in records]),
              pdp_index=np.concatenate([np.asarray(r["pdp_index"], dtype=np.int64) for r in records]),
              error=np.concatenate([np.asarray(r["error"], dtype=bool) for r in records]),
              meta=np.array(json.dumps(meta)))


def load(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: no link simulation; run `dvc repro link/dvc.yaml`")
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return [{**m, "snr_db": z["snr_db"][z["curve"] == i], "pdp_index": z["pdp_index"][z["curve"] == i],
                 "error": z["error"][z["curve"] == i]} for i, m in enumerate(meta)]
