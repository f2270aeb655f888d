"""From processed PDPs to samplers and fixed val/test sets, for the stages."""

from __future__ import annotations

import os

import torch

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import concat
from chanest.channel.preprocess import load_processed
from chanest.channel.sampler import ChannelSampler
from chanest.errors import ParamsError


def sampler(
    processed_dir: str | os.PathLike,
    scenarios: list[str] | tuple[str, ...],
    split: str,
    ofdm: OFDMConfig,
    normalisation: str,
    device: torch.device | str,
) -> ChannelSampler:
    """One sampler drawing uniformly from the ``split`` PDPs of all ``scenarios`` together."""
    sets = [load_processed(processed_dir, s, split) for s in scenarios]
    pdps = sets[0] if len(sets) == 1 else concat(sets, "+".join(scenarios))
    if len(pdps) == 0:
        raise ParamsError(f"no {split} PDPs for {list(scenarios)}: enlarge pdp.n_drops or preprocess.split")
    return ChannelSampler(pdps, ofdm, normalisation=normalisation, device=device)


def samplers(
    processed_dir: str | os.PathLike,
    scenarios: list[str] | tuple[str, ...],
    split: str,
    ofdm: OFDMConfig,
    normalisation: str,
    device: torch.device | str,
) -> dict[str, ChannelSampler]:
    """One sampler per scenario."""
    return {s: sampler(processed_dir, [s], split, ofdm, normalisation, device) for s in scenarios}
