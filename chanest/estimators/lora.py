"""LoRA adapters on the estimator, through ``peft``.

``wrap`` puts a LoRA adapter on the named ``nn.Linear`` (and undilated ``nn.Conv1d``: peft's conv
LoRA does not carry dilation) modules of a (frozen) base estimator;
``save_adapter`` writes it with ``save_pretrained`` plus ``merged/`` (a merged copy's weights as
safetensors) and ``chanest_adapter.json`` (which base it belongs to); ``load_adapter`` puts a saved
adapter back onto a base, strictly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from chanest.estimators.checkpoint import WEIGHTS, CheckpointError, load_estimator, save_estimator
from chanest.utils import imports
from chanest.utils.io import write_json
from chanest.estimators.model import ChannelEstimator
from chanest.utils.params import COUNT, DROPOUT, POSITIVE, Range

if TYPE_CHECKING:
    from peft import PeftModel

# peft is imported inside the functions that build or load adapters: it pulls in transformers
# (~3 s on 2 cores), which readers of an adapter directory (evaluation, the report) do not need;
# with the garbage collector paused, which saves ~0.7 s of it (chanest/utils/imports.py).

DEFAULT_TARGETS = ("mha_q_proj", "mha_k_proj", "mha_v_proj", "out_proj", "ffnn_linear1", "ffnn_linear2")
META = "chanest_adapter.json"


class AdapterError(CheckpointError):
    """An adapter that cannot be built or does not fit its base."""


@dataclass(frozen=True)
class LoraParams:
    """Adaptation settings (``lora`` params section; its optimisation keys go to ``TrainConfig``).

    r: rank; alpha: scaling numerator (scale = alpha / r); dropout: on the adapter input;
    target_modules: exact module names (last path component) to adapt; rank_pattern: per-module
    rank overrides (peft's ``rank_pattern``, e.g. ``{ffnn_linear1: 16}``); full_ft: also train a
    full fine-tuning reference (all weights trainable) with ``full_ft_lr``; scratch: also train the
    base's architecture from random initialisation with ``scratch_lr`` for ``scratch_steps``;
    target_pdps: how many target train PDPs every one of them sees (an int or ``"all"``, see
    :func:`chanest.training.adapt.budget_index`).
    """

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    rank_pattern: dict[str, int] = field(default_factory=dict)
    full_ft: bool = False
    full_ft_lr: float = 5.0e-4
    scratch: bool = False
    scratch_lr: float = 3.0e-3
    scratch_steps: int = 400
    target_pdps: int | str = "all"

    RANGES: ClassVar[dict[str, Range]] = {
        "r": COUNT, "alpha": POSITIVE, "dropout": DROPOUT, "rank_pattern": COUNT, "full_ft_lr": POSITIVE,
        "scratch_lr": POSITIVE, "scratch_steps": COUNT, "target_pdps": COUNT,
    }

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"lora.r must be >= 1, got {self.r}")
        if not self.target_modules:
            raise ValueError("lora.target_modules is empty")
        if not (self.target_pdps == "all" or (isinstance(self.target_pdps, int) and self.target_pdps >= 1)):
            raise ValueError(f"lora.target_pdps must be a positive number of PDPs or 'all', got "
                             f"{self.target_pdps!r}")


def adaptable_names(model: nn.Module) -> set[str]:
    """Last path components of every module LoRA can adapt: ``nn.Linear``, undilated ``nn.Conv1d``."""
    def ok(m: nn.Module) -> bool:
        return isinstance(m, nn.Linear) or (isinstance(m, nn.Conv1d) and m.dilation == (1,))

    return {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if ok(m)}


def wrap(base: ChannelEstimator, p: LoraParams, seed: int) -> PeftModel:
    """Freeze ``base`` and add a LoRA adapter; only adapter weights require grad.

    Raises :class:`AdapterError` naming any target that matches no adaptable module of the base.
    """
    available = adaptable_names(base)
    missing = [t for t in (*p.target_modules, *p.rank_pattern) if t not in available]
    if missing:
        raise AdapterError(
            f"lora target(s) {missing} match no nn.Linear or undilated nn.Conv1d of the estimator; "
            f"available: {sorted(available)}"
        )
    with imports.collector_paused():
        from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(
        r=p.r,
        lora_alpha=p.alpha,
        lora_dropout=p.dropout,
        target_modules=list(p.target_modules),
        rank_pattern=dict(p.rank_pattern),
        bias="none",
    )
    torch.manual_seed(seed)  # LoRA A matrices are drawn from the global RNG
    return get_peft_model(base, cfg)


def state_hash(model: nn.Module) -> str:
    """sha256 of a model's weights (names, shapes, bytes): identifies the base an adapter needs."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_adapter(
    directory: str | os.PathLike,
    model: PeftModel,
    base_hash: str,
    info: dict,
    extra: dict[str, ChannelEstimator] | None = None,
) -> None:
    """Write the adapter (``save_pretrained``), ``merged/`` weights and metadata, atomically.

    The merge happens on a deep copy: the model being trained is never merged. ``extra``
    estimators (e.g. the full fine-tuning reference) are saved in sub-directories of their name.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        model.save_pretrained(tmp)
        _sort_target_modules(tmp / "adapter_config.json")
        merged = copy.deepcopy(model).merge_and_unload()
        save_estimator(tmp / "merged", merged)
        write_json(tmp / META, {"base_sha256": base_hash, **info})
        for name, estimator in (extra or {}).items():
            save_estimator(tmp / name, estimator)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _sort_target_modules(path: Path) -> None:
    """peft keeps ``target_modules`` as a set and writes it in set order, which follows Python's
    per-process string hashing: sorted, the same adapter is the same bytes on every run."""
    cfg = json.loads(path.read_text())
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
        write_json(path, cfg)


def read_meta(directory: str | os.PathLike) -> dict:
    path = Path(directory) / META
    if not path.is_file():
        raise AdapterError(f"{path}: not a chanest adapter directory (no {META})")
    return json.loads(path.read_text())


def load_adapter(base: ChannelEstimator, directory: str | os.PathLike, check_base: bool = True) -> PeftModel:
    """Put the adapter in ``directory`` onto ``base`` (strict: every adapter key must fit)."""
    directory = Path(directory)
    meta = read_meta(directory)
    if check_base and meta["base_sha256"] != state_hash(base):
        raise AdapterError(
            f"{directory}: adapter was trained on base {meta['base_sha256'][:12]}, "
            f"this base is {state_hash(base)[:12]}"
        )
    with imports.collector_paused():
        from peft import PeftModel

    try:
        model = PeftModel.from_pretrained(base, directory, is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as err:
        raise AdapterError(f"{directory}: adapter does not fit the base estimator: {err}") from err
    # peft loads leniently; check that every saved adapter key was placed
    from safetensors.torch import load_file

    saved = load_file(directory / "adapter_model.safetensors")
    placed = {k.replace(".default", "") for k in model.state_dict()}
    stray = sorted(k for k in saved if k not in placed)
    if stray:
        raise AdapterError(f"{directory}: adapter keys not placed on the base: {stray[:10]}")
    return model


#: The references a transfer may train beside the adapter (``lora.full_ft``, ``lora.scratch``),
#: saved in sub-directories of the adapter's directory.
REFERENCES = ("full_ft", "scratch")


def load_adapted(directory: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, ChannelEstimator]:
    """A target's adapted estimators, in eval mode: ``lora`` (the adapter's merged weights), then
    each reference trained beside it."""
    directory = Path(directory)
    models = {"lora": load_estimator(merged_path(directory).parent, device).eval()}
    models |= {r: load_estimator(directory / r, device).eval() for r in REFERENCES if (directory / r).is_dir()}
    return models


def merged_path(directory: str | os.PathLike) -> Path:
    return Path(directory) / "merged" / WEIGHTS


def describe(directory: str | os.PathLike) -> dict:
    """What an adapter directory holds: base hash, r, alpha, targets, trainable parameters."""
    directory = Path(directory)
    cfg_path = directory / "adapter_config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{cfg_path}: no adapter config (expected peft save_pretrained output)")
    cfg = json.loads(cfg_path.read_text())
    meta = read_meta(directory)
    return {
        "directory": str(directory),
        "base_sha256": meta["base_sha256"],
        "r": cfg["r"],
        "alpha": cfg["lora_alpha"],
        "target_modules": sorted(cfg["target_modules"]),
        "rank_pattern": cfg.get("rank_pattern") or {},
        "trainable_parameters": meta.get("trainable_parameters"),
        "scenario": meta.get("scenario"),
    }
