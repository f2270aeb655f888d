"""The training loop: it learns, it is deterministic, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from chanest.estimators.model import ChannelEstimator
from chanest.channel.sampler import ChannelSampler
from chanest.training import train as train_module
from chanest.training.train import TrainConfig, code_fingerprint, make_val_sets, train
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




def stop_after(sampler, n: int, error: type[BaseException]) -> None:
    """Make ``sampler`` raise ``error`` on its ``n + 1``-th batch (a run killed mid-training)."""
    original, calls = sampler.sample, {"n": 0}

    def sample_then_stop(*a, **k):
        calls["n"] += 1
        if calls["n"] > n:
            raise error
        return original(*a, **k)

    sampler.sample = sample_then_stop


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
    stop_after(sampler, interrupt_at, Interrupt)
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


def test_a_resume_inside_a_validation_window_keeps_its_train_loss(small_ofdm, tmp_path):
    """Checkpoints every 10 steps, validation every 20: a run stopped at step 30 and resumed logs
    the same history (train loss of steps 21-40 included) as an uninterrupted run."""
    cfg = dataclasses.replace(CFG, steps=40, checkpoint_every=10)
    model, sampler, val = setup(small_ofdm)
    whole = train(model, sampler, val, cfg, seed=3).history

    state = tmp_path / "state.pt"
    model, sampler, val = setup(small_ofdm)
    stop_after(sampler, 30, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        train(model, sampler, val, cfg, seed=3, state_path=state, run_id="run")
    model, sampler, val = setup(small_ofdm)
    resumed = train(model, sampler, val, cfg, seed=3, state_path=state, run_id="run").history
    assert [h["step"] for h in resumed] == [20, 40]
    assert resumed == whole


def test_the_code_fingerprint_follows_the_package_and_the_stage_script(tmp_path, monkeypatch):
    """A state written by other code is not resumed: the run id holds a hash of the source."""
    package = tmp_path / "chanest"
    (package / "training").mkdir(parents=True)
    (package / "model.py").write_text("WIDTH = 64\n")
    (package / "training" / "train.py").write_text("")
    stage = tmp_path / "train_base.py"
    stage.write_text("main()\n")
    monkeypatch.setattr(train_module, "__file__", str(package / "training" / "train.py"))
    first = code_fingerprint(stage)
    assert code_fingerprint(stage) == first
    (package / "model.py").write_text("WIDTH = 128\n")  # the package changed
    second = code_fingerprint(stage)
    assert second != first
    stage.write_text("main(fast=True)\n")  # the stage script changed
    assert code_fingerprint(stage) not in (first, second)


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
    from chanest.training.train import train_config
    from chanest.utils.params import ParamsError

    section = {"steps": 10, "batch_size": 64}
    assert train_config({"base": section}, "base").nproc == 1
    assert train_config({"base": {**section, "amp": False}}, "base").amp == "off"  # YAML's bare `off`
    assert train_config({"lora": {**section, "nproc": 4, "amp": "bf16"}}, "lora").nproc == 4
    with pytest.raises(ParamsError, match=r"base: batch_size 64 must be divisible by nproc 3"):
        train_config({"base": {**section, "nproc": 3}}, "base")
    with pytest.raises(ParamsError, match=r"lora: amp 'fp16' not in"):
        train_config({"lora": {**section, "amp": "fp16"}}, "lora")
    with pytest.raises(ParamsError, match=r"base.nproc"):
        train_config({"base": {**section, "nproc": "2"}}, "base")


def test_log_step_sees_every_validation_step_and_changes_nothing(small_ofdm):
    """The logger hook only observes: the same weights and history with or without it."""
    seen = []
    model, sampler, val = setup(small_ofdm)
    logged = train(model, sampler, val, CFG, seed=3, log_step=seen.append)
    plain_model, sampler, val = setup(small_ofdm)
    plain = train(plain_model, sampler, val, CFG, seed=3)
    assert all(torch.equal(v, plain_model.state_dict()[k]) for k, v in model.state_dict().items())
    assert seen == logged.history == plain.history
    assert [e["step"] for e in seen] == [20, 40, 60]
    for e in seen:
        assert set(e) == {"step", "train_loss", "val_nmse_db", "lr", "scenarios"}
        assert set(e["scenarios"]) == {"x"}
        assert e["scenarios"]["x"] == pytest.approx(e["val_nmse_db"], abs=1e-4)


def test_a_resumed_run_logs_the_whole_history(small_ofdm, tmp_path):
    """Stopped after 50 steps (state at 40), resumed: the logger gets 20, 40 (replayed), then 60."""

    class Interrupt(Exception):
        pass

    state = tmp_path / "state.pt"
    model, sampler, val = setup(small_ofdm)
    original, calls = sampler.sample, {"n": 0}

    def sample_then_stop(*a, **k):
        calls["n"] += 1
        if calls["n"] > 50:
            raise Interrupt
        return original(*a, **k)

    sampler.sample = sample_then_stop
    first = []
    with pytest.raises(Interrupt):
        train(model, sampler, val, CFG, seed=3, state_path=state, run_id="run", log_step=first.append)
    assert [e["step"] for e in first] == [20, 40]

    resumed = []
    model, sampler, val = setup(small_ofdm)
    result = train(model, sampler, val, CFG, seed=3, state_path=state, run_id="run", log_step=resumed.append)
    assert [e["step"] for e in resumed] == [20, 40, 60]
    assert resumed == result.history and resumed[:2] == first


def test_training_log_writes_dvclive_files_without_dvc_yaml_or_network(tmp_path, monkeypatch):
    """chanest.training.live on dvclive: per-step TSVs and metrics.json, no dvc.yaml, no Studio even with a
    token configured, no socket opened."""
    import json
    import socket
    from types import SimpleNamespace

    from chanest.training.live import TrainingLog
    from chanest.evaluation.plots import read_live_metric

    attempts = []

    def refuse(*a, **k):
        attempts.append(a)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("DVC_STUDIO_OFFLINE", "false")  # (restored after the test)
    monkeypatch.setenv("DVC_STUDIO_TOKEN", "isat_not_a_token")
    monkeypatch.setenv("DVC_STUDIO_REPO_URL", "https://example.invalid/repo.git")
    monkeypatch.chdir(tmp_path)

    log = TrainingLog("reports/live/run")
    entries = [{"step": s, "train_loss": 1.0 / s, "val_nmse_db": -10.0 - s, "lr": 1e-3,
                "scenarios": {"A": -9.0 - s, "B": -11.0 - s}} for s in (5, 10)]
    for e in entries:
        log.logger()(e)
    for e in entries[:1]:
        log.logger("full_ft/")(e)
    log.finish(SimpleNamespace(best_step=10, best_val_db={"mean": -20.0}, steps=10, wall_s=1.23,
                               samples_per_s=100.0))
    assert attempts == []
    d = tmp_path / "reports/live/run"
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["val_nmse_db"] == -20.0 and metrics["A"]["val_nmse_db"] == -19.0
    assert metrics["best_step"] == 10 and metrics["wall_s"] == 1.2
    assert metrics["full_ft"]["val_nmse_db"] == -15.0
    curve = read_live_metric(d)
    assert list(curve.columns) == ["step", "val_nmse_db"] and curve.step.tolist() == [5, 10]
    assert read_live_metric(d, "B/val_nmse_db").val_nmse_db.tolist() == [-16.0, -21.0]
    assert read_live_metric(d, "full_ft/val_nmse_db").step.tolist() == [5]
    names = ("train_loss", "lr", "val_nmse_db", "A/val_nmse_db", "B/val_nmse_db")
    tsvs = [f"reports/live/run/plots/metrics/{p}{m}.tsv" for p in ("", "full_ft/") for m in names]
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(["reports/live/run/metrics.json", *tsvs])  # no dvc.yaml, report, .dvc


def test_a_step_whose_loss_overflows_is_skipped_and_the_weights_stay_finite(small_ofdm, monkeypatch, caplog):
    """An overflowing loss (inf, so inf and then NaN gradients) skips that update: the weights stay
    finite, training goes on and says so; without the guard the NaN reached the weights."""
    from chanest.training import train as train_module

    calls = {"n": 0}
    real = train_module.loss_fn

    def overflow_at_step_3(kind, est, batch):
        calls["n"] += 1
        loss = real(kind, est, batch)
        return loss * float("inf") if calls["n"] == 3 else loss

    monkeypatch.setattr(train_module, "loss_fn", overflow_at_step_3)
    model, sampler, val = setup(small_ofdm, residual="delay_prior")
    with caplog.at_level("WARNING", logger="chanest.training.train"):
        result = train(model, sampler, val, dataclasses.replace(CFG, steps=10, val_every=5), seed=3)
    assert result.steps == 10
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert "step 3: non-finite gradient norm, update skipped (1 so far)" in caplog.text
