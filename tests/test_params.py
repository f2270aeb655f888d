"""params.yaml: both profiles parse into every stage's config; wrong keys and types are named."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from chanest import config
from chanest.estimators.lora import LoraParams
from chanest.estimators.model import estimator_config
from chanest.utils.params import ParamsError, from_section, get, load_params
from chanest.training.train import TrainConfig, train_config
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
    est = estimator_config(params, ofdm)
    assert est.n_tokens * est.token_size == ofdm.n_subcarriers
    train_config(params, "base")
    adapter_keys = tuple(f for f in LoraParams.__dataclass_fields__)
    train_config(params, "lora", exclude=adapter_keys)
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
    assert estimator_config(paper, o).n_tokens == 256


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
    with pytest.raises(ValueError, match="'Mars_Nlos' is not a built-in name .* no entry under sites"):
        config.scenarios(params)
    params["synth"]["normalisation"] = "energy"
    with pytest.raises(ParamsError, match="synth.normalisation = 'energy'"):
        config.normalisation(params)


# ------------------------------------------------------------------ numeric ranges, before any work


def _parse(params: dict, section: str) -> None:
    """Parse ``section`` of ``params`` as the stage that reads it does."""
    from chanest.training import adapt
    from chanest.studies.frontier import FrontierParams
    from chanest.studies.link import LinkParams
    from chanest.channel.preprocess import SplitConfig

    parse = {
        "base": lambda: train_config(params, "base"),
        "lora": lambda: adapt.settings(params),
        "model": lambda: estimator_config(params, config.ofdm(params)),
        "ofdm": lambda: config.ofdm(params),
        "eval": lambda: config.eval_params(params),
        "pdp": lambda: from_section(config.PDPParams, params["pdp"], "pdp"),
        "link": lambda: from_section(LinkParams, params["link"], "link"),
        "frontier": lambda: from_section(FrontierParams, params["frontier"], "frontier"),
        "preprocess": lambda: from_section(SplitConfig, params["preprocess"]["split"], "preprocess.split"),
    }
    parse[section]()


#: (dotted key, a bad value, what the error must say): every numeric param with a range
BAD = [
    ("base.lr", -1.0, "base.lr"), ("base.lr", 0.0, "base.lr"), ("base.steps", 0, "base.steps"),
    ("base.batch_size", 0, "base.batch_size"), ("base.weight_decay", -0.1, "base.weight_decay"),
    ("base.warmup_steps", -1, "base.warmup_steps"), ("base.min_lr_ratio", 1.5, "base.min_lr_ratio"),
    ("base.grad_clip", -1.0, "base.grad_clip"), ("base.val_every", 0, "base.val_every"),
    ("base.val_samples", 0, "base.val_samples"), ("base.checkpoint_every", 0, "base.checkpoint_every"),
    ("base.log_every", 0, "base.log_every"), ("base.nproc", 0, "base.nproc"),
    ("base.snr_db", [30.0, 0.0], "reversed"), ("base.lr", float("nan"), "base.lr"),
    ("lora.alpha", -1.0, "lora.alpha"), ("lora.alpha", 0.0, "lora.alpha"), ("lora.dropout", 2.0, "lora.dropout"),
    ("lora.dropout", 1.0, "lora.dropout"), ("lora.r", 0, "lora.r"), ("lora.lr", -1.0, "lora.lr"),
    ("lora.full_ft_lr", 0.0, "lora.full_ft_lr"), ("lora.scratch_lr", -3.0e-3, "lora.scratch_lr"),
    ("lora.scratch_steps", 0, "lora.scratch_steps"), ("lora.target_pdps", 0, "lora.target_pdps"),
    ("lora.rank_pattern", {"ffnn_linear1": 0}, "lora.rank_pattern.ffnn_linear1"),
    ("lora.steps", 0, "lora.steps"), ("lora.min_lr_ratio", -0.5, "lora.min_lr_ratio"),
    ("model.d_model", 0, "model.d_model"), ("model.dropout", 1.0, "model.dropout"),
    ("model.delay_oversample", 0.0, "model.delay_oversample"), ("model.n_layers", 0, "model.n_layers"),
    ("ofdm.subcarrier_spacing_hz", -30000.0, "ofdm.subcarrier_spacing_hz"), ("ofdm.cp_s", -1.0e-6, "ofdm.cp_s"),
    ("ofdm.delay_offset_max_cp", -0.2, "ofdm.delay_offset_max_cp"),
    ("eval.n_samples", 1, "eval.n_samples"), ("eval.cross_n_samples", 0, "eval.cross_n_samples"),
    ("eval.cross_n_samples", 10_000, "cross_n_samples"), ("eval.batch_size", 0, "eval.batch_size"),
    ("eval.n_boot", 10, "eval.n_boot"), ("eval.snr_db", [10.0, 0.0], "eval"),
    ("pdp.n_drops", 0, "pdp.n_drops"), ("pdp.carrier_ghz", 0.0, "pdp.carrier_ghz"),
    ("link.batch_size", 0, "link.batch_size"), ("link.min_errors", 0, "link.min_errors"),
    ("link.max_blocks", 0, "link.max_blocks"), ("link.min_errors", 500, "link.min_errors"),
    ("link.n_boot", 5, "link.n_boot"), ("link.workers", 0, "link.workers"), ("link.mcs_table", 9, "link.mcs_table"),
    ("link.bp_iterations", 0, "link.bp_iterations"), ("link.mcs_index", [-1], "link.mcs_index[0]"),
    ("frontier.workers", 0, "frontier.workers"), ("frontier.ranks", [0], "frontier.ranks"),
    ("frontier.budgets", [0], "frontier.budgets[0]"),
    ("preprocess.split", {"train": 1.2, "val": -0.1, "test": -0.1}, "split"),
]


@pytest.mark.parametrize("key, value, says", BAD, ids=[f"{k}={v}" for k, v, _ in BAD])
def test_a_value_out_of_range_is_a_params_error_naming_the_key(key, value, says):
    params = load_params(REPO / "params.yaml")
    section, *path = key.split(".")
    node = params
    for part in [section, *path][:-1]:
        node = node[part]
    node[key.split(".")[-1]] = value
    with pytest.raises(ParamsError, match=re.escape(says)):
        _parse(params, section)


def test_the_committed_params_are_in_range():
    params = load_params(REPO / "params.yaml")
    for section in ("base", "lora", "model", "ofdm", "eval", "pdp", "link", "frontier", "preprocess"):
        _parse(params, section)


@pytest.mark.parametrize("stage, key, value", [
    ("train_base", "base.lr", -1.0), ("transfer InF_Los", "lora.alpha", -1.0), ("transfer InF_Los", "lora.dropout", 2.0),
])
def test_a_stage_with_a_bad_value_stops_before_any_work_naming_the_key(tmp_path, stage, key, value):
    """The stage script in a folder holding only params.yaml: it must fail on the params (exit 1,
    one line naming the key), before it looks for data or models that are not there."""
    params = load_params(REPO / "params.yaml")
    section, name = key.split(".")
    params[section][name] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, "-m", f"stages.{stage.split()[0]}", *stage.split()[1:]], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"ParamsError: params: {key} = {value!r} is out of range" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (tmp_path / "models").exists()


@pytest.mark.parametrize("path", ["params.yaml", "research/params.yaml"])
def test_every_params_file_sets_every_key_so_no_code_default_applies(path):
    """The params file is the one home of a pipeline's settings: each section sets every field of
    the config it parses into, so a default in the code (there for library use) never decides a
    pipeline's result, and a key deleted from the file fails here instead of silently taking it."""
    import dataclasses

    from chanest.channel.ofdm import OFDMConfig
    from chanest.channel.preprocess import SplitConfig
    from chanest.estimators.model import EstimatorConfig
    from chanest.estimators.nomp import NOMPConfig
    from chanest.studies.link import LinkParams
    from chanest.studies.points import PointsParams

    params = load_params(REPO / path)
    numerology = {"n_subcarriers", "pilot_indices", "subcarrier_spacing_hz", "prior_max_delay_s"}
    views = {"pdp": config.PDPParams, "ofdm": OFDMConfig, "preprocess.split": SplitConfig,
             "model": EstimatorConfig, "base": TrainConfig, "lora": (TrainConfig, LoraParams),
             "eval": config.EvalParams, "nomp": NOMPConfig, "link": LinkParams, "points": PointsParams}
    checked = 0
    for section, classes in views.items():
        try:
            values = get(params, section)
        except ParamsError:
            continue  # a section this pipeline does not have (research has no frontier, say)
        fields = {f.name for cls in (classes if isinstance(classes, tuple) else (classes,))
                  for f in dataclasses.fields(cls) if f.init} - numerology
        missing = sorted(fields - set(values))
        assert not missing, f"{path}: {section} does not set {missing}"
        checked += 1
    assert checked >= 8


def test_stages_read_every_section_through_its_accessor():
    """One way to read params: a stage calls the accessor beside the config it parses into
    (``config.ofdm(params)``, ``nomp_config(params)``, ``points_params(params)`` ...), never
    ``from_section`` itself, so a section is parsed (and checked) the same way everywhere."""
    offenders = [p.name for p in sorted((REPO / "stages").glob("*.py")) if "from_section(" in p.read_text()]
    assert offenders == []
