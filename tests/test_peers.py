"""The deep-learning peers: registered in one file each, trained and adapted like chanest's
estimator, loaded strictly, and compared with it on identical samples."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from chanest.errors import CheckpointError, ParamsError
from chanest.estimators.checkpoint import save_estimator
from chanest.estimators.lora import LoraParams, wrap
from chanest.evaluation.report import TestErrors
from chanest.peers import PEERS, build_peer, get_peer, load_peer, register_peer
from chanest.peers.reesnet import ReEsNet, ReEsNetConfig
from chanest.peers.report import compare

PARAMS = {"peers": {"reesnet": {"channels": 8, "blocks": 2, "kernel": 3}, "v4": {"n_layers": 1}},
          "model": {"d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 32}}


def params_for(small_ofdm) -> dict:
    """The repository's params with small peers (the numerology is the fixture's ``small_ofdm``)."""
    import yaml

    from conftest import REPO, merge

    return merge(yaml.safe_load((REPO / "params.yaml").read_text()), copy.deepcopy(PARAMS))


@pytest.mark.parametrize("spacing", [2, 3, 6])
def test_reesnet_upsamples_the_pilot_comb_to_every_subcarrier(spacing):
    model = ReEsNet(ReEsNetConfig(n_subcarriers=48 * spacing, pilot_spacing=spacing, channels=4, blocks=1))
    h = torch.randn(5, 48, dtype=torch.complex64)
    out = model(h)
    assert out.shape == (5, 48 * spacing) and out.dtype == torch.complex64
    # the pilots are divided by their RMS on the way in and multiplied back: f(a h) = a f(h), a > 0
    torch.testing.assert_close(model(3.0 * h), 3.0 * out, rtol=1e-5, atol=1e-6)


def test_an_unknown_or_twice_registered_peer_fails_naming_it(small_ofdm):
    with pytest.raises(ParamsError, match=r"unknown peer 'resnet'.*registered: \['reesnet', 'v4'\]"):
        get_peer("resnet")
    with pytest.raises(ValueError, match="registered twice"):
        register_peer(dataclasses.replace(PEERS["v4"]))
    with pytest.raises(ParamsError, match="peers.reesnet.width"):
        build_peer("reesnet", {"peers": {"reesnet": {"width": 3}}}, small_ofdm)


@pytest.mark.parametrize("name", ["reesnet", "v4"])
def test_a_peer_saves_and_loads_strictly_through_the_registry(name, small_ofdm, tmp_path):
    torch.manual_seed(0)
    model = build_peer(name, params_for(small_ofdm), small_ofdm)
    save_estimator(tmp_path / "p", model)
    cfg = json.loads((tmp_path / "p" / "config.json").read_text())
    assert cfg.get("kind", "") == get_peer(name).kind
    again = load_peer(name, tmp_path / "p")
    h = torch.randn(4, len(small_ofdm.pilot_indices), dtype=torch.complex64)
    snr = torch.tensor([0.0, 10.0, 20.0, 30.0])
    torch.testing.assert_close(again(h, snr), model(h, snr), rtol=0, atol=0)
    other = "v4" if name == "reesnet" else "reesnet"
    with pytest.raises(CheckpointError, match=f"not of peer '{other}'"):
        load_peer(other, tmp_path / "p")


def test_peer_checkpoint_with_a_missing_key_is_named(small_ofdm, tmp_path):
    from safetensors.torch import load_file, save_file

    model = build_peer("reesnet", params_for(small_ofdm), small_ofdm)
    save_estimator(tmp_path / "p", model)
    state = load_file(tmp_path / "p" / "model.safetensors")
    del state["conv_mid.weight"]
    save_file(state, tmp_path / "p" / "model.safetensors")
    with pytest.raises(CheckpointError, match="missing key: conv_mid.weight"):
        load_peer("reesnet", tmp_path / "p")


@pytest.mark.parametrize("name", ["reesnet", "v4"])
def test_lora_on_a_peer_trains_only_its_adapter_and_merges_exactly(name, small_ofdm):
    torch.manual_seed(0)
    base = build_peer(name, params_for(small_ofdm), small_ofdm)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model = wrap(base, LoraParams(r=2, alpha=4.0, target_modules=get_peer(name).lora_targets), seed=1)
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in k for k in trainable)
    with torch.no_grad():
        for k, p in model.named_parameters():
            if "lora_B" in k:
                p.normal_(std=0.1)  # a trained adapter: B is no longer zero
    h = torch.randn(6, len(small_ofdm.pilot_indices), dtype=torch.complex64)
    snr = torch.full((6,), 10.0)
    adapted = model(h, snr)
    merged = copy.deepcopy(model).merge_and_unload()
    torch.testing.assert_close(merged(h, snr), adapted, rtol=1e-4, atol=1e-4)
    base_after = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
                  for k, v in model.state_dict().items() if "lora_" not in k}
    assert all(torch.equal(base_after[k], v) for k, v in before.items())


def part(scenario: str, errors: dict[str, np.ndarray], energy: np.ndarray, snr: np.ndarray, pdp: np.ndarray) -> TestErrors:
    return TestErrors(scenario, np.arange(len(snr)), snr, pdp, energy, errors)


def test_compare_pairs_each_peer_with_chanest_on_the_same_samples():
    rng = np.random.default_rng(0)
    n = 400
    snr = np.repeat(np.array([0.0, 10.0, 20.0, 30.0], dtype=np.float32), n // 4)
    pdp = rng.integers(0, 40, n)
    energy = np.ones(n)
    genie = 10 ** (-snr / 10) * 0.5 * rng.uniform(0.9, 1.1, n)
    ref = part("InF_Los", {"ls": 4 * genie, "lmmse_genie": genie, "base": 1.5 * genie}, energy, snr, pdp)
    lora = part("InF_Los", {"lora": 1.25 * genie}, energy, snr, pdp)
    # the peer's base is 2x the genie (3 dB), its adapter 1.6x: chanest ahead by 10 log10(2/1.5), 10 log10(1.6/1.25)
    peer = part("InF_Los", {"v4": 2.0 * genie, "v4_lora": 1.6 * genie}, energy, snr, pdp)
    rows, metrics = compare("InF_Los", ref, lora, {"v4": peer}, n_boot=200, seed=7)
    assert metrics["v4"]["versus"] == "base" and metrics["v4_lora"]["versus"] == "lora"
    assert metrics["v4"]["chanest_ahead_db"] == pytest.approx(10 * np.log10(2 / 1.5), abs=2e-3)
    assert metrics["v4_lora"]["chanest_ahead_db"] == pytest.approx(10 * np.log10(1.6 / 1.25), abs=2e-3)
    lo, hi = metrics["v4_lora"]["chanest_ahead_ci_db"]
    assert lo <= metrics["v4_lora"]["chanest_ahead_db"] <= hi and lo > 0
    assert metrics["lora"]["gap_to_genie_db"] == pytest.approx(10 * np.log10(1.25), abs=2e-3)
    assert {r["method"] for r in rows} == {"ls", "lmmse_genie", "base", "lora", "v4", "v4_lora"}
    shifted = part("InF_Los", {"v4": 2.0 * genie}, energy, snr, np.roll(pdp, 1))
    with pytest.raises(ValueError, match="peer v4 on InF_Los: evaluated on other test samples"):
        compare("InF_Los", ref, lora, {"v4": shifted}, n_boot=10, seed=7)


@pytest.mark.slow
def test_the_peers_pipeline_trains_adapts_evaluates_and_reports_every_peer(pipeline):
    from conftest import SOURCES, TARGETS, ran

    peers = ("reesnet", "v4")
    assert ran(pipeline.peers) == ({f"peers/dvc.yaml:peer_train@{p}" for p in peers}
                                   | {f"peers/dvc.yaml:peer_transfer@{p}-{t}" for p in peers for t in TARGETS}
                                   | {f"peers/dvc.yaml:peer_eval@{p}" for p in peers} | {"peers/dvc.yaml:peers_report"})
    assert ran(pipeline.peers_again) == set()
    metrics = json.loads((pipeline.work / "reports/peers/metrics.json").read_text())
    assert list(metrics) == SOURCES + TARGETS
    ours = json.loads((pipeline.work / "reports/metrics.json").read_text())
    for scenario in SOURCES + TARGETS:
        adapted = scenario in TARGETS
        want = {"ls", "lmmse_stat", "nomp", "lmmse_genie", "base", *peers} | ({"lora", *(f"{p}_lora" for p in peers)}
                                                                           if adapted else set())
        assert set(metrics[scenario]) == want, scenario
        # the same bootstrap as the main report: chanest's own numbers are its numbers
        for m in ("base", "lora") if adapted else ("base",):
            assert metrics[scenario][m]["gap_to_genie_ci_db"] == ours[scenario][m]["gap_to_genie_ci_db"]
        for p in peers:
            entry = metrics[scenario][p]
            low, high = entry["chanest_ahead_ci_db"]
            assert entry["versus"] == "base" and low <= entry["chanest_ahead_db"] <= high
            # paired: the difference of the gaps to the genie
            gap = entry["gap_to_genie_db"] - metrics[scenario]["base"]["gap_to_genie_db"]
            assert entry["chanest_ahead_db"] == pytest.approx(gap, abs=2e-3)
    for p in peers:
        for t in TARGETS:
            report = json.loads((pipeline.work / f"reports/peers/transfer_{p}_{t}.json").read_text())
            assert report["trainable_parameters"] > 0 and report["scenario"] == t
    assert (pipeline.work / "reports/peers/nmse_vs_snr.csv").read_text().startswith("scenario,method,snr_db")
