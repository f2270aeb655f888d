"""The deep-learning peers: other published estimators, trained and adapted like chanest's.

A peer is one file in this folder that calls :func:`register_peer` with its name, label, style,
how to build it from its ``peers.<name>`` params section and which of its modules LoRA adapts.
Everything else is shared with chanest's estimator: the data, the training loop and its budget
(the ``base`` section), the LoRA adaptation (the ``lora`` section, with the peer's target modules),
the fixed test sets and the paired statistics (``peers/dvc.yaml``).

Every peer takes the LS pilots ``(B, n_pilots)`` complex64 and the SNR ``(B,)`` in dB (which it may
ignore) and returns ``H`` on every subcarrier, ``(B, n_sc)`` complex64. Its checkpoint is the
project's (``model.safetensors`` + ``config.json``); ``config.json`` names its ``kind``, and
:func:`load_peer` builds it through the registry.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from chanest.channel.ofdm import OFDMConfig
from chanest.errors import CheckpointError, ParamsError
from chanest.estimators.checkpoint import CONFIG, WEIGHTS, load_state_strict


@dataclass(frozen=True)
class Peer:
    """One registered peer.

    build:        (its ``peers.<name>`` params section, the whole params, the OFDM numerology) ->
                  a freshly initialised model.
    from_config:  the dict its model wrote as ``config.json`` -> the same (untrained) model.
    lora_targets: the module names (last path component) its LoRA adapter trains.
    """

    name: str
    label: str
    color: str  # of its base; its adapter's is ``color_lora`` (PNGs and the dvc plots template)
    color_lora: str
    marker: str
    build: Callable[[dict[str, Any], dict[str, Any], OFDMConfig], nn.Module]
    from_config: Callable[[dict[str, Any]], nn.Module]
    lora_targets: tuple[str, ...]
    kind: str = ""  # what its config.json says, if not its name (a ChannelEstimator says nothing)


PEERS: dict[str, Peer] = {}


def register_peer(peer: Peer) -> Peer:
    if peer.name in PEERS:
        raise ValueError(f"peer {peer.name!r} is registered twice")
    PEERS[peer.name] = peer
    return peer


def _discover() -> None:
    """Import every module of this folder once: each registers its peer."""
    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("report",):
            importlib.import_module(f"{__name__}.{info.name}")


def get_peer(name: str) -> Peer:
    """The registered peer ``name``; a :class:`ParamsError` naming the registered ones otherwise."""
    _discover()
    if name not in PEERS:
        raise ParamsError(f"params: peers.names: unknown peer {name!r}; registered: {sorted(PEERS)}")
    return PEERS[name]


#: Losses a peer may train with (``peers.<name>.loss``; see :func:`chanest.training.train.loss_fn`).
LOSSES = ("nmse", "nmse_snr", "nmse_db")


def section(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params['peers'][name]``, checked to be a mapping."""
    entry = (params.get("peers") or {}).get(name)
    if not isinstance(entry, dict):
        raise ParamsError(f"params: peers.{name} must be a mapping, got {entry!r}")
    return entry


def build_peer(name: str, params: dict[str, Any], ofdm: OFDMConfig) -> nn.Module:
    """A freshly initialised peer from ``params['peers'][name]`` (its shape keys; not ``loss``)."""
    peer = get_peer(name)
    return peer.build({k: v for k, v in section(name, params).items() if k != "loss"}, params, ofdm)


def peer_loss(name: str, params: dict[str, Any], default: str) -> str:
    """The loss peer ``name`` trains and adapts with: ``peers.<name>.loss``, else ``default``."""
    loss = section(name, params).get("loss", default)
    if loss not in LOSSES:
        raise ParamsError(f"params: peers.{name}.loss = {loss!r}; expected one of {LOSSES}")
    return loss


def load_peer(name: str, directory: str | os.PathLike, device: str | torch.device = "cpu",
              weights: str = WEIGHTS) -> nn.Module:
    """Peer ``name`` from ``directory`` (``config.json`` + ``weights``), loaded strictly."""
    peer = get_peer(name)
    directory = Path(directory)
    path = directory / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{path}: no peer config (expected {CONFIG} beside {weights})")
    cfg = json.loads(path.read_text())
    kind = cfg.get("kind", "")
    if kind != peer.kind:
        raise CheckpointError(f"{path}: a checkpoint of kind {kind or 'chanest'!r}, not of peer {name!r}")
    model = peer.from_config(cfg)
    if not (directory / weights).is_file():
        raise CheckpointError(f"{directory / weights}: weights file not found")
    load_state_strict(model, load_file(directory / weights), str(directory / weights))
    return model.to(device)
