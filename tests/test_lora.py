"""LoRA through peft: only adapters train, every adapter trains, adapter == merged, clear errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from chanest.estimators.checkpoint import CheckpointError, load_estimator, save_estimator
from chanest.estimators.lora import AdapterError, LoraParams, describe, load_adapter, merged_path, save_adapter, state_hash, wrap
from chanest.estimators.model import ChannelEstimator, n_parameters
from chanest.channel.sampler import ChannelSampler
from chanest.training.train import TrainConfig, make_val_sets, train
from conftest import exponential_pdps
from test_model import tiny_config

CFG = TrainConfig(steps=15, batch_size=16, lr=5.0e-3, warmup_steps=2, val_every=5, val_samples=16,
                  log_every=1000, device="cpu")


@pytest.fixture(scope="module")
def adapted(small_ofdm, tmp_path_factory):
    """A base saved to disk, adapted for a few steps on another delay spread, then saved."""
    root = tmp_path_factory.mktemp("lora")
    torch.manual_seed(0)
    save_estimator(root / "base", ChannelEstimator(tiny_config(small_ofdm)))
    base = load_estimator(root / "base")
    before = {k: v.clone() for k, v in base.state_dict().items()}
    params = LoraParams(r=4, alpha=8.0, rank_pattern={"ffnn_linear1": 2})
    model = wrap(base, params, seed=1)
    sampler = ChannelSampler(exponential_pdps(100, seed=4, ds_ns=400.0), small_ofdm)
    val = make_val_sets({"t": ChannelSampler(exponential_pdps(10, seed=5, ds_ns=400.0), small_ofdm)}, CFG, 2)
    result = train(model, sampler, val, CFG, seed=1)
    save_adapter(root / "adapter", model, state_hash(load_estimator(root / "base")),
                 {"scenario": "InF_Nlos", "trainable_parameters": n_parameters(model, True)})
    return root, model, before, result, params


def test_only_adapter_weights_train_and_base_stays_bitwise_equal(adapted):
    root, model, before, result, _ = adapted
    trainable = [k for k, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in k for k in trainable)
    base_now = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
                for k, v in model.state_dict().items() if "lora_" not in k}
    assert set(base_now) == set(before)
    for k, v in before.items():
        assert torch.equal(base_now[k], v), k
    # exactly r * (in + out) per wrapped Linear: d_model 16, d_ff 32, r 4 (2 for ffnn_linear1)
    per_layer = 4 * 4 * (16 + 16) + 2 * (16 + 32) + 4 * (32 + 16)
    assert n_parameters(model, True) == 2 * per_layer


def test_every_targeted_module_has_a_nonzero_trained_lora_b(adapted):
    _, model, _, _, params = adapted
    b = {n: m.lora_B["default"].weight for n, m in model.named_modules() if hasattr(m, "lora_B")}
    n_layers = 2
    assert len(b) == n_layers * len(params.target_modules)  # every target in every layer wrapped
    for name, w in b.items():
        assert w.abs().max() > 0, f"{name}: lora_B never trained"
    ranks = {n.rsplit(".", 1)[-1]: w.shape[1] for n, w in b.items()}
    assert ranks["ffnn_linear1"] == 2 and ranks["mha_q_proj"] == 4  # the rank pattern applied


def test_adapter_on_a_fresh_base_equals_the_merged_weights(adapted, small_ofdm):
    root, model, _, _, _ = adapted
    h_ls = torch.randn(6, small_ofdm.n_pilots, dtype=torch.complex64)
    snr = torch.linspace(0, 30, 6)
    with torch.no_grad():
        on_base = load_adapter(load_estimator(root / "base"), root / "adapter").eval()(h_ls, snr)
        merged = load_estimator(merged_path(root / "adapter").parent).eval()(h_ls, snr)
        trained = model.eval()(h_ls, snr)
        plain = load_estimator(root / "base").eval()(h_ls, snr)
    torch.testing.assert_close(on_base, merged, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(on_base, trained, rtol=1e-5, atol=1e-6)
    assert (on_base - plain).abs().max() > 1e-3  # and the adapter does change the output


def test_describe_lists_what_the_adapter_holds(adapted):
    root, model, _, _, _ = adapted
    d = describe(root / "adapter")
    assert d["r"] == 4 and d["alpha"] == 8.0 and d["scenario"] == "InF_Nlos"
    assert d["target_modules"] == sorted(LoraParams().target_modules)
    assert d["trainable_parameters"] == n_parameters(model, True)
    assert d["base_sha256"] == state_hash(load_estimator(root / "base"))


def test_errors_unknown_target_other_base_missing_base(adapted, small_ofdm, tmp_path):
    root = adapted[0]
    with pytest.raises(AdapterError, match=r"\['mha_qproj'\] match no nn.Linear"):
        wrap(load_estimator(root / "base"), LoraParams(target_modules=("mha_qproj", "out_proj")), 0)
    other = ChannelEstimator(dataclasses.replace(tiny_config(small_ofdm), d_model=32))
    with pytest.raises(AdapterError, match="trained on base"):
        load_adapter(other, root / "adapter")
    with pytest.raises(AdapterError, match="does not fit"):
        load_adapter(other, root / "adapter", check_base=False)
    with pytest.raises(CheckpointError, match="config.json"):
        load_estimator(tmp_path / "no_base_here")


def test_adapter_config_is_peft_save_pretrained_output(adapted):
    cfg = json.loads((adapted[0] / "adapter" / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 4
    assert (adapted[0] / "adapter" / "adapter_model.safetensors").is_file()


def test_the_adapter_config_lists_target_modules_sorted(adapted):
    """peft writes target_modules in set order (per-process string hashing): chanest sorts them, so
    the same adapter is the same bytes in every run (seen: two runs of one transfer differed there)."""
    root, *_ = adapted
    modules = json.loads((root / "adapter" / "adapter_config.json").read_text())["target_modules"]
    assert len(modules) > 3 and modules == sorted(modules)
