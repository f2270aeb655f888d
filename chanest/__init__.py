"""chanest: deep-learning OFDM channel estimation, base training and LoRA transfer per scenario.

The public API, importable from the top level (each name is loaded on first use, so
``import chanest`` stays cheap)::

    import torch, chanest
    ofdm = chanest.OFDMConfig()                              # numerology (the CPU profile's defaults)
    pdps = chanest.PDPSet.from_pdps("InF_Los", chanest.read_mat("data/nyusim-28ghz/PDP_InF_Los.mat"))
    batch = chanest.ChannelSampler(pdps.normalised(), ofdm).sample(256, 10.0, torch.Generator().manual_seed(0))
    ls = chanest.ls_linear(batch.h_ls, ofdm)                 # (256, 624) complex estimates
    est = chanest.load_estimator("models/base")              # after `dvc repro`; adapters: models/lora/<T>/merged

- PDPs: :func:`read_mat`, :class:`PDP`, :class:`PDPSet`;
- numerology and channels: :class:`OFDMConfig`, :class:`ChannelSampler` (-> :class:`ChannelBatch`),
  :func:`nmse`, :func:`db`;
- baselines: :func:`ls_linear`, :class:`StatLMMSE`, :func:`genie_lmmse`;
- estimators: :class:`ChannelEstimator`, :func:`load_estimator` (strict safetensors load),
  :func:`load_adapter` (a peft adapter onto a base);
- params: :func:`load_params`, :class:`ParamsError`.
"""

from __future__ import annotations

import importlib

from chanest.utils import cpu as _cpu

_cpu.pin()  # one CPU instruction-set path before anything loads torch (chanest.utils.cpu)

__version__ = "0.1.0"

#: public name -> the module that defines it
_API = {
    "read_mat": "chanest.channel.pdp", "PDP": "chanest.channel.pdp", "PDPSet": "chanest.channel.pdp",
    "OFDMConfig": "chanest.channel.ofdm",
    "ChannelSampler": "chanest.channel.sampler", "ChannelBatch": "chanest.channel.sampler",
    "nmse": "chanest.channel.sampler", "db": "chanest.channel.sampler",
    "ls_linear": "chanest.estimators.baselines", "StatLMMSE": "chanest.estimators.baselines",
    "genie_lmmse": "chanest.estimators.baselines",
    "ChannelEstimator": "chanest.estimators.model", "load_estimator": "chanest.estimators.checkpoint",
    "load_adapter": "chanest.estimators.lora",
    "load_params": "chanest.utils.params", "ParamsError": "chanest.utils.params",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:  # submodules (``from chanest import channel``) are imported by Python itself
        raise AttributeError(f"module 'chanest' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
