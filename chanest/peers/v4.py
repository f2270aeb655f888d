"""The research's own estimator as it was: the v4 learned-query transformer, no delay prior.

The architecture chanest's estimator grew from (:mod:`chanest.estimators.model`), with what chanest
added switched off: no residual estimate (the network outputs ``H`` itself, no LMMSE to correct),
queries that start from their learned embedding only (not from their pilot token), no SNR input and
no relative position bias in attention. Its shape is the research's (4 decoder layers; the other
sizes from the ``model`` section), so the difference to chanest's estimator in the report is what
the delay prior and the other additions buy on the same data and the same training budget.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from chanest.channel.ofdm import OFDMConfig
from chanest.errors import ParamsError
from chanest.estimators.model import ChannelEstimator, EstimatorConfig
from chanest.peers import Peer, register_peer
from chanest.utils.params import COUNT, from_section
from chanest.estimators.model import estimator_config


@dataclasses.dataclass(frozen=True)
class _Shape:  # the params keys of peers.v4
    n_layers: int = 4
    RANGES = {"n_layers": COUNT}


def build(section: dict[str, Any], params: dict[str, Any], ofdm: OFDMConfig) -> ChannelEstimator:
    shape = from_section(_Shape, section, "peers.v4")
    try:
        cfg = dataclasses.replace(estimator_config(params, ofdm), n_layers=shape.n_layers, residual="none",
                                  query_from_pilots=False, snr_input=False, rel_pos_bias=False,
                                  offgrid_taps=0)
    except ValueError as err:
        raise ParamsError(f"params: peers.v4: {err}") from err
    return ChannelEstimator(cfg)


def from_config(cfg: dict[str, Any]) -> ChannelEstimator:
    return ChannelEstimator(EstimatorConfig.from_dict(cfg))


register_peer(Peer(
    name="v4", label="v4 transformer (research, no prior)", color="#bcbd22", color_lora="#7b7c10",
    marker="h",
    build=build, from_config=from_config,
    lora_targets=("mha_q_proj", "mha_k_proj", "mha_v_proj", "out_proj", "ffnn_linear1", "ffnn_linear2"),
))
