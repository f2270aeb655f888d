"""Saving and strictly loading estimators: ``model.safetensors`` + ``config.json``, nothing pickled.

Training checkpoints (optimiser, scheduler, RNG states) are plain dicts of tensors and numbers,
written with :func:`torch.save` and read back with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from chanest.errors import CheckpointError  # noqa: F401  (raised here; defined there)
from chanest.utils.io import atomic_path, write_json
from chanest.estimators.model import ChannelEstimator, EstimatorConfig

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def save_estimator(directory: str | os.PathLike, model: ChannelEstimator) -> None:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (atomically each)."""
    directory = Path(directory)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS) as tmp:
        save_file(state, tmp, metadata={"format": "pt"})
    write_json(directory / CONFIG, model.cfg.to_dict())


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``; raise naming every missing, unexpected or mis-shaped key."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or misshaped:
        lines = [f"{source} does not match the model:"]
        lines += [f"  missing key: {k}" for k in missing]
        lines += [f"  unexpected key: {k}" for k in unexpected]
        lines += [f"  mis-shaped key: {k}" for k in misshaped]
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state, strict=True)


def read_config(directory: str | os.PathLike) -> EstimatorConfig:
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{path}: no estimator config (expected {CONFIG} beside {WEIGHTS})")
    try:
        return EstimatorConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: not a valid estimator config ({err})") from err


def load_estimator(
    directory: str | os.PathLike, device: str | torch.device = "cpu", weights: str = WEIGHTS
) -> ChannelEstimator:
    """Build the estimator from ``config.json`` and load ``weights`` strictly."""
    directory = Path(directory)
    model = ChannelEstimator(read_config(directory))
    path = directory / weights
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    load_state_strict(model, load_file(path), str(path))
    return model.to(device)


def save_training_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a resumable training state (tensors, numbers, nested dicts; no modules)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)
