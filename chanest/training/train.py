"""The training loop shared by base training and LoRA transfer.

Samples are synthesised on the fly from the train split (SNR uniform in ``snr_db`` per sample),
validated every ``val_every`` steps on a fixed val set (val split, fixed SNRs, its own seed), and the
best-on-val weights are kept. A resumable state is written every ``checkpoint_every`` steps; a run
resumed from it ends with the same weights as an uninterrupted one (CPU, same thread count).

With ``nproc > 1`` (under ``torchrun``, see :mod:`chanest.training.distributed`) every rank draws the same
global batch from the same seeded generator and trains a DDP-wrapped model on its own contiguous
``batch_size / nproc`` shard; each rank's loss is the mean over its shard, and DDP averages the
gradients, so a step equals the one-process step on the global batch up to float reduction order.
Rank 0 alone validates, logs (``log_step``) and writes the resumable state. ``amp: bf16`` runs the
forward pass under bf16 autocast on CUDA (the delay-prior LMMSE solve stays complex128; validation
is float32).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from chanest.training import distributed
from chanest.estimators.checkpoint import load_training_state, save_training_state
from chanest.utils.params import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, Range, from_section, get
from chanest.channel.sampler import ChannelBatch, ChannelSampler, nmse

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw", "sgd")
LOSSES = ("nmse", "nmse_snr", "nmse_db")
AMP = ("off", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the ``base`` and ``lora`` params sections share these keys).

    lr: peak learning rate; the schedule warms up linearly over ``warmup_steps`` then decays with
    a cosine to ``lr * min_lr_ratio`` at ``steps``. snr_db: (low, high) dB, drawn uniformly per
    training sample. loss: ``nmse`` (mean per-sample NMSE, linear), ``nmse_snr`` (per-sample NMSE
    divided by the sample's noise variance, i.e. relative to LS, which balances SNRs), ``nmse_db``.
    nproc: training processes (DDP under torchrun; ``batch_size`` is the global batch and must be
    divisible by it). amp: ``off`` (float32) or ``bf16`` (bf16 autocast of the forward pass on
    CUDA; on a CPU device it warns and trains in float32, so one params file serves both).
    """

    steps: int = 1000
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 2.0e-3
    weight_decay: float = 0.0
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    snr_db: tuple[float, float] = (-5.0, 35.0)
    loss: str = "nmse_snr"
    val_every: int = 100
    val_snr_db: tuple[float, ...] = (0.0, 10.0, 20.0, 30.0)
    val_samples: int = 256
    checkpoint_every: int = 200
    log_every: int = 50
    device: str = "auto"
    nproc: int = 1
    amp: str = "off"

    RANGES: ClassVar[dict[str, Range]] = {
        "steps": COUNT, "batch_size": COUNT, "lr": POSITIVE, "weight_decay": NON_NEGATIVE,
        "warmup_steps": NON_NEGATIVE, "min_lr_ratio": FRACTION, "grad_clip": NON_NEGATIVE,
        "val_every": COUNT, "val_samples": COUNT, "checkpoint_every": COUNT, "log_every": COUNT,
        "nproc": COUNT,
    }

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} not in {OPTIMIZERS}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r} not in {LOSSES}")
        if self.snr_db[0] > self.snr_db[1]:
            raise ValueError(f"snr_db range {self.snr_db} is reversed")
        if self.amp not in AMP:
            raise ValueError(f"amp {self.amp!r} not in {AMP}")
        if self.batch_size % self.nproc:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by nproc {self.nproc} "
                             f"(each process trains on batch_size / nproc samples of the global batch)")


def train_config(params: dict, section: str, exclude: tuple[str, ...] = ()) -> TrainConfig:
    """The optimisation keys of params section ``section`` (``base`` or ``lora``) as a
    :class:`TrainConfig`; ``exclude``: the section's other keys (the adapter's, in ``lora``)."""
    raw = {k: v for k, v in get(params, section).items() if k not in exclude}
    if raw.get("amp") is False:  # YAML 1.1 reads a bare `off` (also from `dvc exp run -S`) as false
        raw["amp"] = "off"
    return from_section(TrainConfig, raw, section)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``: None for ``off``, and (with a warning) on CPU."""
    if amp == "off":
        return None
    if device.type != "cuda":
        warnings.warn(f"amp: {amp} is for CUDA; training on {device} in float32", stacklevel=2)
        return None
    return torch.bfloat16


def autocast(dtype: torch.dtype | None, device: torch.device):
    """A bf16 autocast context on ``device`` (a no-op context when ``dtype`` is None)."""
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def shard(batch: ChannelBatch) -> ChannelBatch:
    """This rank's contiguous shard of a global batch (the batch itself in a single process)."""
    if not distributed.active():
        return batch
    sl = distributed.shard(len(batch))
    return ChannelBatch(**{f.name: getattr(batch, f.name)[sl] for f in fields(batch)})


def loss_fn(kind: str, est: Tensor, batch: ChannelBatch) -> Tensor:
    e = nmse(est, batch.h)
    if kind == "nmse":
        return e.mean()
    if kind == "nmse_snr":
        return (e / batch.noise_var).mean()
    return (10 * torch.log10(e.clamp_min(1e-12))).mean()


def make_val_sets(
    samplers: dict[str, ChannelSampler], cfg: TrainConfig, seed: int
) -> dict[str, ChannelBatch]:
    """A fixed val batch per scenario: ``val_samples`` per SNR of ``val_snr_db``."""
    out = {}
    for name, sampler in samplers.items():
        g = torch.Generator(device=sampler.device).manual_seed(seed)
        snr = torch.tensor(cfg.val_snr_db, device=sampler.device).repeat_interleave(cfg.val_samples)
        out[name] = sampler.sample(len(snr), snr, g)
    return out


@torch.no_grad()
def evaluate_nmse_db(model: nn.Module, batch: ChannelBatch, chunk: int = 1024) -> dict[float, float]:
    """Mean NMSE in dB at each SNR present in ``batch`` (NMSE averaged linearly, then dB)."""
    was_training = model.training
    model.eval()
    errs = torch.cat(
        [
            nmse(model(batch.h_ls[i : i + chunk], batch.snr_db[i : i + chunk]), batch.h[i : i + chunk])
            for i in range(0, batch.h.shape[0], chunk)
        ]
    )
    model.train(was_training)
    return {
        float(s): float(10 * torch.log10(errs[batch.snr_db == s].mean()))
        for s in torch.unique(batch.snr_db).tolist()
    }


def val_summary(model: nn.Module, val_sets: dict[str, ChannelBatch]) -> dict[str, float]:
    """Per scenario: NMSE dB averaged over the val SNRs; plus ``mean`` over scenarios."""
    per = {k: sum(d.values()) / len(d) for k, d in ((k, evaluate_nmse_db(model, b)) for k, b in val_sets.items())}
    per["mean"] = sum(per.values()) / len(per)
    return per


def make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def lr_lambda(cfg: TrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return f


@dataclass
class TrainResult:
    steps: int
    best_step: int
    best_val_db: dict[str, float]
    initial_val_db: dict[str, float]
    wall_s: float
    samples_per_s: float
    history: list[dict] = field(default_factory=list)

    def summary(self, parameters: int) -> dict:
        """What a training stage reports of its run (``reports/train_base.json`` and the like):
        steps, best step, wall time (s), samples/s, the model's ``parameters`` and the best
        validation NMSE (dB) per scenario."""
        return {
            "steps": self.steps,
            "best_step": self.best_step,
            "wall_s": round(self.wall_s, 1),
            "samples_per_s": round(self.samples_per_s, 1),
            "parameters": parameters,
            "val_nmse_db": {k: round(v, 3) for k, v in self.best_val_db.items()},
        }


def fingerprint(*parts: object) -> str:
    """A short hash of everything a resumable state must agree with (configs, data, seed).

    A :class:`TrainConfig`'s ``nproc`` is left out (a state resumes under any process count) and
    so is ``amp`` when ``off`` (run ids of states written before these keys existed still match).
    """
    def view(p: object) -> object:
        if not hasattr(p, "__dataclass_fields__"):
            return p
        d = asdict(p)
        if isinstance(p, TrainConfig):
            d.pop("nproc")
            if d["amp"] == "off":
                d.pop("amp")
        return d

    blob = json.dumps([view(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def code_fingerprint(*files: str | os.PathLike) -> str:
    """A short hash of the ``chanest`` package's source (every ``.py`` file, path and bytes) and of
    ``files`` (the calling stage script).

    Part of a resumable state's run id: a state written by other code is not resumed, so a code
    change that DVC re-runs ``train_base`` for trains afresh instead of finishing the old run.
    """
    package = Path(__file__).resolve().parents[1]
    paths = [(p.relative_to(package).as_posix(), p) for p in sorted(package.rglob("*.py"))]
    paths += [(Path(f).name, Path(f)) for f in files]
    h = hashlib.sha256()
    for name, path in paths:
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def train(
    model: nn.Module,
    sampler: ChannelSampler,
    val_sets: dict[str, ChannelBatch],
    cfg: TrainConfig,
    seed: int,
    state_path: str | os.PathLike | None = None,
    run_id: str = "",
    name: str = "train",
    log_step: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train the parameters of ``model`` that require grad; return history and best-on-val.

    ``state_path``: where the resumable state lives; it is resumed only if its ``run_id`` (see
    :func:`fingerprint`) matches. On return the model holds its best-on-val weights.

    ``log_step``: called (rank 0 only) with each validation step's history entry, ``{"step",
    "train_loss", "val_nmse_db" (mean over the val sets), "lr", "scenarios": {name: val_nmse_db}}``;
    after a resume it is first called with every entry of the restored history, so it always sees
    the whole run. It only observes: training is bit-identical with or without it.

    Distributed (``torch.distributed`` initialised with more than one rank, see the module
    docstring): ``model`` is the plain (unwrapped) model on this rank's device, ``cfg.batch_size``
    the global batch; only rank 0 needs ``val_sets`` (others may pass ``{}``), and only rank 0's
    result (validation, best weights) is meaningful: the other ranks return the final weights.
    """
    device = sampler.device
    main = distributed.is_main()
    amp = amp_dtype(cfg.amp, device)
    torch.manual_seed(seed)  # dropout draws from the global RNG
    gen = torch.Generator(device=device).manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}

    def snapshot() -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in model.state_dict().items() if k in trainable}

    step, history, wall_before = 0, [], 0.0
    running, window = 0.0, 0  # train loss summed over the steps since the last validation
    initial = val_summary(model, val_sets) if main else {"mean": math.inf}
    best, best_step, best_state = initial, 0, snapshot() if main else {}
    if state_path is not None and Path(state_path).is_file():
        st = load_training_state(state_path)
        if st.get("run_id") == run_id:
            model.load_state_dict({**model.state_dict(), **st["model"]})
            opt.load_state_dict(st["optimizer"])
            sched.load_state_dict(st["scheduler"])
            gen.set_state(st["generator"].to(gen.get_state().device))
            torch.set_rng_state(st["torch_rng"])
            step, history, wall_before = st["step"], st["history"], st["wall_s"]
            initial, best, best_step, best_state = st["initial"], st["best"], st["best_step"], st["best_state"]
            running, window = st["running_loss"], st["running_steps"]
            log.info("%s: resumed from %s at step %d", name, state_path, step)
        else:
            log.info("%s: ignoring %s (it belongs to another run)", name, state_path)
    if main and log_step is not None:
        for entry in history:  # the steps before a resume (none in a fresh run)
            log_step(entry)
    # DDP broadcasts rank 0's weights and buffers on construction; the buffers are constants, so
    # they are not re-synchronised at every forward
    net = model
    if distributed.active():
        ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)

    model.train()
    t0, t_log, seen = time.perf_counter(), time.perf_counter(), 0
    skipped = 0
    while step < cfg.steps:
        batch = shard(sampler.sample(cfg.batch_size, cfg.snr_db, gen))  # same global batch on all ranks
        with autocast(amp, device):
            est = net(batch.h_ls, batch.snr_db)
        loss = loss_fn(cfg.loss, est, batch)  # the mean over this rank's shard
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # the norm of the (all-reduced) gradients, the same on every rank; a non-finite one (a loss
        # that overflowed) skips the update instead of writing NaN into the weights
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
        if torch.isfinite(grad_norm):
            opt.step()
        else:
            skipped += 1
            log.warning("%s step %d: non-finite gradient norm, update skipped (%d so far)", name, step + 1, skipped)
        sched.step()
        step += 1
        seen += cfg.batch_size
        loss_value = distributed.mean(float(loss.detach()), device)  # of the global batch
        running, window = running + loss_value, window + 1
        if step % cfg.val_every == 0 or step == cfg.steps:
            if main:  # the other ranks go on to the next step and wait for rank 0 in its backward
                val = val_summary(model, val_sets)
                if val["mean"] < best["mean"]:
                    best, best_step, best_state = val, step, snapshot()
                history.append({"step": step, "train_loss": running / window,
                                "val_nmse_db": round(val["mean"], 4), "lr": sched.get_last_lr()[0],
                                "scenarios": {k: round(v, 4) for k, v in val.items() if k != "mean"}})
                if log_step is not None:
                    log_step(history[-1])
            running, window = 0.0, 0
        if main and (step % cfg.log_every == 0 or step == cfg.steps):
            now = time.perf_counter()
            rate = seen / (now - t_log)
            last = f"{history[-1]['val_nmse_db']:.2f}" if history else "-"  # "-": not validated yet
            log.info("%s step %d/%d loss %.4g val %s dB (best %.2f @ %d) lr %.2e %.0f samples/s",
                     name, step, cfg.steps, loss_value, last, best["mean"], best_step,
                     sched.get_last_lr()[0], rate)
            t_log, seen = now, 0
        if main and state_path is not None and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
            save_training_state(state_path, {
                "run_id": run_id, "step": step, "history": history,
                "wall_s": wall_before + time.perf_counter() - t0,
                "model": {k: v for k, v in model.state_dict().items() if k in trainable},
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                "initial": initial, "best": best, "best_step": best_step, "best_state": best_state,
                "running_loss": running, "running_steps": window,
            })
    if main:
        model.load_state_dict({**model.state_dict(), **best_state})
    wall = wall_before + time.perf_counter() - t0
    return TrainResult(
        steps=step, best_step=best_step, best_val_db=best, initial_val_db=initial, wall_s=wall,
        samples_per_s=step * cfg.batch_size / max(wall, 1e-9), history=history,
    )
