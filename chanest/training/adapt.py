"""Adapting the base estimator to a target scenario: the target-data budget and the three methods.

A *budget* is how many of the target's training PDPs an adaptation may see (``lora.target_pdps``):
an int, or ``"all"``. The subset is a prefix of one seeded permutation of the train split
(:func:`budget_index`), so budgets are nested (the 32-PDP subset lies inside the 128-PDP one) and
never reach the val or test PDPs, which live in other splits.

Methods (:func:`adapt`), all trained by :func:`chanest.training.train.train` on the same sampler:

- ``lora``: a peft LoRA adapter on the frozen base (:mod:`chanest.estimators.lora`);
- ``full_ft``: every base weight trainable, at ``lora.full_ft_lr``;
- ``scratch``: the base's architecture (its ``config.json``) from a seeded random initialisation,
  no base weight read, at ``lora.scratch_lr`` for ``lora.scratch_steps``: what the target data
  alone are worth.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from chanest.estimators import lora
from chanest.estimators.checkpoint import load_estimator, read_config
from chanest.estimators.model import ChannelEstimator, EstimatorConfig, n_parameters
from chanest.channel.ofdm import OFDMConfig
from chanest.utils.params import ParamsError, from_section, get
from chanest.channel.pdp import PDPSet, name_key
from chanest.channel.preprocess import load_processed
from chanest.channel.sampler import ChannelBatch, ChannelSampler
from chanest.training.train import TrainConfig, TrainResult, train
from chanest.training.train import train_config

METHODS = ("lora", "full_ft", "scratch")

Budget = int | str  # a PDP count, or "all"


def settings(params: dict[str, Any]) -> tuple[lora.LoraParams, TrainConfig]:
    """The ``lora`` params section split into its adaptation settings and its optimisation."""
    section = get(params, "lora")
    if not isinstance(section, dict):
        raise ParamsError(f"params: lora must be a mapping, got {section!r}")
    keys = {f.name for f in dataclasses.fields(lora.LoraParams)}
    lp = from_section(lora.LoraParams, {k: v for k, v in section.items() if k in keys}, "lora")
    return lp, train_config(params, "lora", exclude=tuple(keys))


def check_budget(value: object, key: str = "lora.target_pdps") -> Budget:
    """``value`` as a budget (a positive int or ``"all"``), else a :class:`ParamsError` naming ``key``."""
    if value == "all" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ParamsError(f"params: {key} = {value!r}; expected a positive number of PDPs or 'all'")


def budget_index(n_train: int, budget: Budget, seed: int, scenario: str) -> np.ndarray:
    """Sorted positions (in the scenario's train split) of the ``budget`` PDPs an adaptation sees.

    The first ``budget`` entries of one permutation of ``range(n_train)``, seeded by ``seed`` and
    the scenario alone: a smaller budget's subset lies inside every larger one's.
    """
    budget = check_budget(budget)
    if budget == "all":
        return np.arange(n_train)
    if budget > n_train:
        raise ParamsError(f"params: lora.target_pdps = {budget} but {scenario} has only {n_train} "
                          "train PDPs (use 'all', or a smaller budget)")
    order = np.random.default_rng([seed, 7919, name_key(scenario)]).permutation(n_train)
    return np.sort(order[:budget])


def target_pdps(processed_dir: str | os.PathLike, scenario: str, budget: Budget, seed: int) -> PDPSet:
    """The train PDPs of ``scenario`` within ``budget`` (see :func:`budget_index`)."""
    train_split = load_processed(processed_dir, scenario, "train")
    return train_split.subset(budget_index(len(train_split), budget, seed, scenario))


def target_sampler(
    processed_dir: str | os.PathLike,
    scenario: str,
    budget: Budget,
    seed: int,
    ofdm: OFDMConfig,
    normalisation: str,
    device: torch.device | str,
) -> ChannelSampler:
    """A sampler over the budgeted train PDPs of one target."""
    pdps = target_pdps(processed_dir, scenario, budget, seed)
    return ChannelSampler(pdps, ofdm, normalisation=normalisation, device=device)


def scratch_estimator(cfg: EstimatorConfig, seed: int, device: torch.device | str = "cpu") -> ChannelEstimator:
    """A freshly initialised estimator of architecture ``cfg`` (seeded; no trained weight)."""
    torch.manual_seed(seed)
    return ChannelEstimator(cfg).to(device)


def uniform_rank(lp: lora.LoraParams, r: int) -> lora.LoraParams:
    """``lp`` with rank ``r`` on every target module (no rank pattern), alpha / r kept."""
    return dataclasses.replace(lp, r=r, alpha=lp.alpha / lp.r * r, rank_pattern={})


@dataclass
class Adapted:
    model: nn.Module  # the peft model (lora) or a plain estimator (full_ft, scratch)
    result: TrainResult
    trainable_parameters: int


def adapt(
    method: str,
    base_dir: str | os.PathLike,
    sampler: ChannelSampler,
    val_sets: dict[str, ChannelBatch],
    cfg: TrainConfig,
    lp: lora.LoraParams,
    seed: int,
    device: torch.device | str,
    name: str = "",
    log_step=None,
) -> Adapted:
    """Train one adaptation ``method`` (see the module docstring) on ``sampler``.

    ``cfg`` is the ``lora`` section's optimisation; ``full_ft`` replaces its learning rate,
    ``scratch`` its learning rate and step count. The model returned holds its best-on-val weights.
    """
    if method not in METHODS:
        raise ValueError(f"unknown adaptation method {method!r}; expected one of {METHODS}")
    name = name or method
    if method == "lora":
        model = lora.wrap(load_estimator(base_dir, device), lp, seed)
    elif method == "full_ft":
        model = load_estimator(base_dir, device)
        cfg = dataclasses.replace(cfg, lr=lp.full_ft_lr)
    else:
        model = scratch_estimator(read_config(base_dir), seed, device)
        cfg = dataclasses.replace(cfg, lr=lp.scratch_lr, steps=lp.scratch_steps)
    trainable = n_parameters(model, trainable_only=True)
    result = train(model, sampler, val_sets, cfg, seed, name=name, log_step=log_step)
    return Adapted(model, result, trainable)

