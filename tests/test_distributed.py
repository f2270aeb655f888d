"""DDP training (2 gloo processes on the CPU) equals 1-process training on the same global batch.

Every rank synthesises the same global batch and trains on its half; DDP averages the gradients,
so the weights and the loss history after a few steps match the 1-process run up to float32
reduction order, and a DDP run resumed from rank 0's state equals an uninterrupted one. Also: the
stage entry points with ``base.nproc: 2`` / ``lora.nproc: 2`` (relaunched under torchrun).
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from safetensors.torch import load_file

from chanest.training import distributed
from chanest.estimators import lora
from chanest.estimators.model import ChannelEstimator
from chanest.channel.ofdm import OFDMConfig
from chanest.channel.sampler import ChannelSampler
from chanest.training.train import TrainConfig, make_val_sets, train
from conftest import REPO, SOURCES, TARGETS, TINY, exponential_pdps, merge, temp_repo
from test_model import tiny_config

CFG = TrainConfig(steps=6, batch_size=16, lr=3.0e-3, warmup_steps=2, val_every=3, val_samples=8,
                  checkpoint_every=1000, log_every=1000, device="cpu")
LORA = lora.LoraParams(r=2, target_modules=("mha_q_proj", "mha_v_proj", "ffnn_linear1", "delay_conv_in"))
#: float32 reduction order (gloo all-reduce of the gradients, per-shard sums, 1 thread each) moves
#: the weights by up to ~1e-5 after 6 AdamW steps at lr 3e-3 (measured 9e-6 base, 2e-6 LoRA)
RTOL, ATOL = 1e-4, 5e-5


def run_both(cfg: TrainConfig) -> dict:
    """Base training, then LoRA on a fresh (seeded) base; tiny model, delay-prior residual.

    Returns (meaningful on rank 0) the trained weights and loss histories.
    """
    ofdm = OFDMConfig(n_subcarriers=48, fft_size=64)
    sampler = ChannelSampler(exponential_pdps(200, seed=1), ofdm)
    val = make_val_sets({"x": ChannelSampler(exponential_pdps(20, seed=2), ofdm)}, cfg, seed=9) \
        if distributed.is_main() else {}
    torch.manual_seed(0)
    base = ChannelEstimator(tiny_config(ofdm, "delay_prior"))
    res = train(base, sampler, val, cfg, seed=3)
    torch.manual_seed(0)
    adapted = lora.wrap(ChannelEstimator(tiny_config(ofdm, "delay_prior")), LORA, seed=3)
    res_lora = train(adapted, sampler, val, cfg, seed=3)
    trainable = {k for k, p in adapted.named_parameters() if p.requires_grad}
    return {
        "base": {k: v.clone() for k, v in base.state_dict().items()},
        "lora": {k: v.clone() for k, v in adapted.state_dict().items() if k in trainable},
        "history": res.history, "history_lora": res_lora.history,
    }


class Interrupt(Exception):
    pass


def interrupted_then_resumed(cfg: TrainConfig, state: str) -> dict[str, torch.Tensor]:
    """Base training stopped after 3 steps (a state every 3), then resumed by a fresh setup."""
    ofdm = OFDMConfig(n_subcarriers=48, fft_size=64)
    cfg = dataclasses.replace(cfg, checkpoint_every=3)

    def setup():
        sampler = ChannelSampler(exponential_pdps(200, seed=1), ofdm)
        val = make_val_sets({"x": ChannelSampler(exponential_pdps(20, seed=2), ofdm)}, cfg, seed=9) \
            if distributed.is_main() else {}
        torch.manual_seed(0)
        return ChannelEstimator(tiny_config(ofdm, "delay_prior")), sampler, val

    model, sampler, val = setup()
    original, calls = sampler.sample, {"n": 0}

    def sample_then_stop(*a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise Interrupt
        return original(*a, **k)

    sampler.sample = sample_then_stop
    with pytest.raises(Interrupt):
        train(model, sampler, val, cfg, seed=3, state_path=state, run_id="run")
    distributed.barrier()  # a restart begins after every rank stopped (and rank 0 wrote the state)
    model, sampler, val = setup()
    train(model, sampler, val, cfg, seed=3, state_path=state, run_id="run")
    return {k: v.clone() for k, v in model.state_dict().items()}


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        cfg = dataclasses.replace(CFG, nproc=world)
        result = run_both(cfg)
        result["resumed"] = interrupted_then_resumed(cfg, out + ".state")
        if rank == 0:
            torch.save(result, out)
    finally:
        dist.destroy_process_group()


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_two_processes_equal_one_process_on_the_same_global_batch(tmp_path):
    out = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "pg"), str(out)), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    torch.set_num_threads(1)
    try:
        ref = run_both(CFG)
    finally:
        torch.set_num_threads(distributed.threads_per_process(1))
    for part in ("base", "lora"):
        for k, v in ref[part].items():
            torch.testing.assert_close(ddp[part][k], v, rtol=RTOL, atol=ATOL, msg=f"{part}: {k}")
    assert not any(".module." in k or k.startswith("module.") for k in ddp["base"])  # unwrapped keys
    for k, v in ddp["base"].items():  # a DDP run resumed from rank 0's state equals an uninterrupted one
        assert torch.equal(ddp["resumed"][k], v), k
    for key in ("history", "history_lora"):
        assert [h["step"] for h in ddp[key]] == [h["step"] for h in ref[key]] == [3, 6]
        for h, r in zip(ddp[key], ref[key]):
            assert h["train_loss"] == pytest.approx(r["train_loss"], rel=RTOL)
            assert h["val_nmse_db"] == pytest.approx(r["val_nmse_db"], abs=2e-3)


def test_batch_must_split_over_the_processes():
    with pytest.raises(ValueError, match="batch_size 15 must be divisible by nproc 2"):
        TrainConfig(batch_size=15, nproc=2)


# --------------------------------------------------------------------------------------------
# The stage entry points relaunch themselves under torchrun
# --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_stage_entry_points_with_nproc_2(tmp_path):
    """`python -m stages.train_base` with base.nproc 2 equals base.nproc 1; transfer with lora.nproc 2."""
    work = tmp_path / "repo"
    params = merge(yaml.safe_load((REPO / "params.yaml").read_text()), TINY)
    params = merge(params, {"scenarios": {"sources": SOURCES[:1], "targets": TARGETS[:1]},
                            "pdp": {"n_drops": 30}, "base": {"steps": 6, "nproc": 1},
                            "lora": {"steps": 4, "nproc": 2, "full_ft": False}})
    sh = temp_repo(work, params)
    sh("dvc", "repro", "pdp_sources", "pdp_targets")
    weights = work / "models/base/model.safetensors"

    one = sh("python", "-m", "stages.train_base")
    assert "torchrun" not in one
    w1 = load_file(weights)
    (work / "models/base_state.pt").unlink()
    params["base"]["nproc"] = 2
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    two = sh("python", "-m", "stages.train_base")
    assert "relaunching under torchrun" in two and "2 process(es)" in two, two[-2000:]
    w2 = load_file(weights)
    assert w1.keys() == w2.keys()  # saved unwrapped: no `module.` prefix
    diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    assert diff < 1e-4, diff

    sh("python", "-m", "stages.transfer", TARGETS[0])  # LoRA: DDP around the peft model
    report = json.loads((work / f"reports/transfer/{TARGETS[0]}.json").read_text())
    assert report["steps"] == 4 and math.isfinite(report["val_nmse_db_lora"])
    assert (work / f"models/lora/{TARGETS[0]}/adapter_model.safetensors").is_file()
