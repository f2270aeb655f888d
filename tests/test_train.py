"""The training loop: it learns, it is deterministic, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from chanest.model import ChannelEstimator
from chanest.synth import ChannelSampler
from chanest.train import TrainConfig, make_val_sets, train
from conftest import exponential_pdps
from test_model import tiny_config

CFG = TrainConfig(steps=60, batch_size=32, lr=3.0e-3, warmup_steps=5, val_every=20, val_samples=32,
                  checkpoint_every=20, log_every=1000, device="cpu")


def setup(small_ofdm, seed=0, residual="robust_lmmse"):
    torch.manual_seed(seed)
    model = ChannelEstimator(tiny_config(small_ofdm, residual))
    sampler = ChannelSampler(exponential_pdps(200, seed=1), small_ofdm)
    val = make_val_sets({"x": ChannelSampler(exponential_pdps(20, seed=2), small_ofdm)}, CFG, seed=9)
    return model, sampler, val


@pytest.mark.parametrize("residual, gain_db", [("none", 3.0), ("robust_lmmse", 0.5), ("delay_prior", 0.5)])
def test_loss_decreases_and_best_weights_are_kept(small_ofdm, residual, gain_db):
    model, sampler, val = setup(small_ofdm, residual=residual)
    result = train(model, sampler, val, CFG, seed=3)
    assert result.steps == 60 and len(result.history) == 3
    if residual == "none":  # an untrained net outputs ~0: NMSE ~ 0 dB
        assert result.initial_val_db["mean"] > -1.0
    else:  # it starts from an LMMSE (flat prior), well below 0 dB, and must still improve on it
        assert result.initial_val_db["mean"] < -5.0
    assert result.best_val_db["mean"] < result.initial_val_db["mean"] - gain_db
    assert result.best_val_db["mean"] == pytest.approx(min(h["val_nmse_db"] for h in result.history), abs=1e-3)


def test_same_seed_same_weights_different_seed_different(small_ofdm):
    runs = []
    for seed in (3, 3, 4):
        model, sampler, val = setup(small_ofdm)
        train(model, sampler, val, dataclasses.replace(CFG, steps=20), seed=seed)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])




@pytest.fixture(scope="module")
def uninterrupted(small_ofdm):
    full, sampler, val = setup(small_ofdm)
    train(full, sampler, val, CFG, seed=3)
    return full.state_dict()


@pytest.mark.parametrize("interrupt_at", [20, 50])
def test_interrupted_run_resumes_to_identical_weights(small_ofdm, tmp_path, interrupt_at, uninterrupted):
    """Stopped after ``interrupt_at`` steps (checkpoints every 20), resumed in a fresh setup."""

    class Interrupt(Exception):
        pass

    state = tmp_path / "state.pt"
    model, sampler, val = setup(small_ofdm)
    original = sampler.sample

    calls = {"n": 0}

    def sample_then_stop(*a, **k):
        calls["n"] += 1
        if calls["n"] > interrupt_at:
            raise Interrupt
        return original(*a, **k)

    sampler.sample = sample_then_stop
    with pytest.raises(Interrupt):
        train(model, sampler, val, CFG, seed=3, state_path=state, run_id="run")
    assert torch.load(state, weights_only=True)["step"] == interrupt_at // 20 * 20

    model, sampler, val = setup(small_ofdm)  # a fresh process: new model, new sampler
    train(model, sampler, val, CFG, seed=3, state_path=state, run_id="run")
    for k, v in uninterrupted.items():
        assert torch.equal(v, model.state_dict()[k]), k

    other, sampler, val = setup(small_ofdm)  # a state of another run is not resumed
    res = train(other, sampler, val, dataclasses.replace(CFG, steps=20), seed=3, state_path=state,
                run_id="another")
    assert res.steps == 20


def test_amp_bf16_on_cpu_warns_and_trains_in_float32(small_ofdm):
    """`amp: bf16` is for CUDA; on a CPU device it warns and the run equals `amp: "off"` exactly."""
    runs = []
    for amp in ("off", "bf16"):
        model, sampler, val = setup(small_ofdm, residual="delay_prior")
        cfg = dataclasses.replace(CFG, steps=4, val_every=2, amp=amp)
        if amp == "bf16":
            with pytest.warns(UserWarning, match="amp: bf16 is for CUDA"):
                train(model, sampler, val, cfg, seed=3)
        else:
            train(model, sampler, val, cfg, seed=3)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_nproc_and_amp_params_are_checked_naming_the_key():
    from chanest import config
    from chanest.params import ParamsError

    section = {"steps": 10, "batch_size": 64}
    assert config.train({"base": section}, "base").nproc == 1
    assert config.train({"base": {**section, "amp": False}}, "base").amp == "off"  # YAML's bare `off`
    assert config.train({"lora": {**section, "nproc": 4, "amp": "bf16"}}, "lora").nproc == 4
    with pytest.raises(ParamsError, match=r"base: batch_size 64 must be divisible by nproc 3"):
        config.train({"base": {**section, "nproc": 3}}, "base")
    with pytest.raises(ParamsError, match=r"lora: amp 'fp16' not in"):
        config.train({"lora": {**section, "amp": "fp16"}}, "lora")
    with pytest.raises(ParamsError, match=r"base.nproc"):
        config.train({"base": {**section, "nproc": "2"}}, "base")
