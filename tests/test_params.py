"""params.yaml: both profiles parse into every stage's config; wrong keys and types are named."""

from __future__ import annotations

import pytest
import yaml

from chanest import config
from chanest.lora import LoraParams
from chanest.params import ParamsError, from_section, get, load_params
from chanest.train import TrainConfig
from conftest import REPO


def keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        nested = isinstance(v, dict) and k != "rank_pattern"  # rank_pattern's keys are data
        out |= keys(v, f"{prefix}{k}.") if nested else {f"{prefix}{k}"}
    return out


@pytest.mark.parametrize("path", ["params.yaml", "profiles/paper.yaml"])
def test_profiles_parse_into_every_config(path):
    params = load_params(REPO / path)
    ofdm = config.ofdm(params)
    est = config.estimator(params, ofdm)
    assert est.n_tokens * est.token_size == ofdm.n_subcarriers
    config.train(params, "base")
    adapter_keys = tuple(f for f in LoraParams.__dataclass_fields__)
    config.train(params, "lora", exclude=adapter_keys)
    from_section(LoraParams, {k: v for k, v in params["lora"].items() if k in adapter_keys}, "lora")
    from_section(config.EvalParams, params["eval"], "eval")
    from_section(config.PDPParams, params["pdp"], "pdp")
    sources, targets = config.scenarios(params)
    assert not set(sources) & set(targets)


def test_paper_profile_has_the_same_keys_and_the_paper_numerology():
    cpu, paper = load_params(REPO / "params.yaml"), load_params(REPO / "profiles/paper.yaml")
    assert keys(cpu) == keys(paper)
    o = config.ofdm(paper)
    assert (o.subcarrier_spacing_hz, o.n_subcarriers, o.fft_size, o.n_pilots) == (120e3, 3072, 4096, 512)
    assert config.estimator(paper, o).n_tokens == 256


def test_wrong_types_and_unknown_keys_are_named():
    with pytest.raises(ParamsError, match=r"base.lr = '1e-4' is not of type float .*1.0e-4"):
        from_section(TrainConfig, yaml.safe_load("lr: 1e-4"), "base")
    with pytest.raises(ParamsError, match=r"base.steps = 'many' is not of type int"):
        from_section(TrainConfig, {"steps": "many"}, "base")
    with pytest.raises(ParamsError, match=r"unknown key\(s\) base.stepz"):
        from_section(TrainConfig, {"stepz": 3}, "base")
    with pytest.raises(ParamsError, match=r"base.snr_db expects 2 values"):
        from_section(TrainConfig, {"snr_db": [0.0, 10.0, 20.0]}, "base")
    with pytest.raises(ParamsError, match=r"base: optimizer 'lion' not in"):
        from_section(TrainConfig, {"optimizer": "lion"}, "base")
    with pytest.raises(ParamsError, match=r"lora.r = 2.5 is not of type int"):
        from_section(LoraParams, {"r": 2.5}, "lora")
    with pytest.raises(ParamsError, match="missing key 'lora.r'"):
        get({"lora": {}}, "lora.r")
    params = load_params(REPO / "params.yaml")
    params["scenarios"]["targets"] = ["InF_Los", "Mars_Nlos"]
    with pytest.raises(ValueError, match="unknown scenario 'Mars_Nlos'"):
        config.scenarios(params)
    params["synth"]["normalisation"] = "energy"
    with pytest.raises(ParamsError, match="synth.normalisation = 'energy'"):
        config.normalisation(params)
