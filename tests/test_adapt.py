"""Target-data budgets, the from-scratch reference, frontier cells and the frontier table."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from chanest.training import adapt
from chanest.estimators.checkpoint import WEIGHTS, save_estimator
from chanest.evaluation.evaluate import TestErrors
from chanest.studies.frontier import Cell, FrontierParams, run_cell
from chanest.studies.frontier_table import summary, table, wide
from chanest.estimators.lora import LoraParams
from chanest.estimators.model import ChannelEstimator
from chanest.utils.params import ParamsError, from_section
from chanest.channel.preprocess import SplitConfig, content_key, load_processed, preprocess, save_processed
from chanest.training.train import TrainConfig
from conftest import exponential_pdps
from test_model import tiny_config

SCENARIO = "InF_Los"


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """A processed InF_Los file of 300 PDPs (about 180 train, 60 val, 60 test)."""
    root = tmp_path_factory.mktemp("processed")
    pdps = exponential_pdps(300, seed=11, scenario=SCENARIO, ds_ns=60.0)
    p = preprocess(SCENARIO, [pdps.pdp(i) for i in range(len(pdps))], 2.34e-6,
                   SplitConfig(0.6, 0.2, 0.2), seed=3)
    save_processed(root / f"{SCENARIO}.npz", p)
    return root


def keys(pdps) -> set[bytes]:
    return {content_key(pdps.pdp(i)) for i in range(len(pdps))}


def test_budgets_are_nested_seeded_and_drawn_from_the_train_split_only(processed):
    n_train = len(load_processed(processed, SCENARIO, "train"))
    subsets = {b: adapt.budget_index(n_train, b, 2026, SCENARIO) for b in (8, 32, 128, "all")}
    assert [len(subsets[b]) for b in (8, 32, 128)] == [8, 32, 128]
    assert np.array_equal(subsets["all"], np.arange(n_train))
    for small, large in [(8, 32), (32, 128), (128, "all")]:
        assert set(subsets[small]) < set(subsets[large])
    again = adapt.budget_index(n_train, 32, 2026, SCENARIO)
    other = adapt.budget_index(n_train, 32, 2027, SCENARIO)
    assert np.array_equal(again, subsets[32]) and not np.array_equal(other, subsets[32])
    # the PDPs themselves: inside the train split, none of them a val or test PDP
    held_out = keys(load_processed(processed, SCENARIO, "val")) | keys(load_processed(processed, SCENARIO, "test"))
    for b in (8, 128, "all"):
        chosen = keys(adapt.target_pdps(processed, SCENARIO, b, 2026))
        assert len(chosen) == len(subsets[b]) and not chosen & held_out
        assert chosen <= keys(load_processed(processed, SCENARIO, "train"))


def test_bad_budgets_fail_naming_the_key(processed):
    for bad in (0, -3, "most", True, 2.5):
        with pytest.raises(ParamsError, match="lora.target_pdps"):
            from_section(LoraParams, {"target_pdps": bad}, "lora")
    with pytest.raises(ParamsError, match=r"frontier.budgets\[1\]"):
        FrontierParams(budgets=(8, "half"))
    with pytest.raises(ParamsError, match="only .* train PDPs"):
        adapt.target_pdps(processed, SCENARIO, 10_000, 2026)
    assert from_section(LoraParams, {"target_pdps": 64}, "lora").target_pdps == 64


@pytest.fixture(scope="module")
def base_dir(small_ofdm, tmp_path_factory):
    """A stand-in for a trained base: every weight moved off its initial value."""
    root = tmp_path_factory.mktemp("base") / "base"
    torch.manual_seed(0)
    model = ChannelEstimator(tiny_config(small_ofdm))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_estimator(root, model)
    return root


def test_scratch_reads_no_base_weight_and_shares_none(small_ofdm, base_dir, tmp_path, processed):
    only_config = tmp_path / "config_only"
    only_config.mkdir()
    (only_config / "config.json").write_text((base_dir / "config.json").read_text())
    assert not (only_config / WEIGHTS).exists()
    sampler = adapt.target_sampler(processed, SCENARIO, 8, 1, small_ofdm, "realisation", "cpu")
    val = {SCENARIO: sampler.sample(16, (10.0, 10.0), torch.Generator().manual_seed(0))}
    cfg = TrainConfig(steps=3, batch_size=8, val_every=3, warmup_steps=1, device="cpu")
    done = adapt.adapt("scratch", only_config, sampler, val, cfg, LoraParams(scratch_steps=3), 5, "cpu")
    base = ChannelEstimator(tiny_config(small_ofdm))
    base.load_state_dict(load_file(base_dir / WEIGHTS))
    fresh = adapt.scratch_estimator(tiny_config(small_ofdm), 5)
    assert done.result.steps == 3
    assert done.trainable_parameters == sum(p.numel() for p in base.parameters())
    for (name, p), q, f in zip(base.named_parameters(), done.model.parameters(), fresh.parameters()):
        assert not torch.equal(p, f), name  # the initialisation is not the base ...
        assert not torch.equal(p, q), name  # ... and neither is the trained result
    # seeded: the same seed gives the same initialisation
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(),
                                                 adapt.scratch_estimator(tiny_config(small_ofdm), 5).parameters()))


def test_uniform_rank_keeps_alpha_over_r_and_drops_the_pattern():
    lp = LoraParams(r=4, alpha=8.0, rank_pattern={"ffnn_linear1": 2})
    for r in (1, 16):
        u = adapt.uniform_rank(lp, r)
        assert (u.r, u.alpha, u.rank_pattern) == (r, 2.0 * r, {})


def cell(small_ofdm, processed, base_dir, budget) -> Cell:
    return Cell(SCENARIO, budget, 2026, small_ofdm, "realisation", LoraParams(r=4, alpha=8.0, scratch_steps=4),
                TrainConfig(steps=4, batch_size=8, val_every=2, val_samples=8, warmup_steps=1, device="cpu"),
                (0.0, 20.0), 12, 7, 64, "cpu", processed=str(processed), base=str(base_dir))


@pytest.mark.slow
def test_a_cell_gives_the_same_numbers_with_one_worker_or_two(small_ofdm, processed, base_dir):
    one = run_cell(cell(small_ofdm, processed, base_dir, 8), (1, 2), workers=1)
    two = run_cell(cell(small_ofdm, processed, base_dir, 8), (1, 2), workers=2)
    assert set(one.errors) == {"scratch", "lora_r1", "lora_r2", "full_ft"}
    for k in one.errors:
        assert np.array_equal(one.errors[k], two.errors[k]), k
    jobs = one.meta["jobs"]
    assert one.meta["target_pdps"] == 8
    assert jobs["lora_r2"]["trainable_parameters"] == 2 * jobs["lora_r1"]["trainable_parameters"]
    assert jobs["scratch"]["trainable_parameters"] == jobs["full_ft"]["trainable_parameters"]
    assert jobs["scratch"]["steps"] == 4


def synthetic_part(rng, methods: dict[str, float], n_pdps=40, per_snr=80, snrs=(0.0, 10.0, 20.0, 30.0), meta=None):
    """A TestErrors whose method m has per-sample NMSE = genie NMSE x 10^(offset_m / 10) x noise."""
    snr = np.repeat(np.array(snrs, dtype=np.float32), per_snr)
    pdp = rng.integers(0, n_pdps, len(snr))
    energy = np.ones(len(snr))
    genie = 10 ** (-np.asarray(snr, dtype=float) / 10) * rng.uniform(0.2, 1.8, n_pdps)[pdp]
    errors = {m: genie * 10 ** (off / 10) * rng.uniform(0.9, 1.1, len(snr)) for m, off in methods.items()}
    errors["lmmse_genie"] = genie
    return TestErrors(SCENARIO, np.arange(len(snr)), snr, pdp, energy, errors, meta or {})


def test_the_table_gives_known_gaps_and_paired_differences_to_full_ft_on_all():
    rng = np.random.default_rng(0)
    ref = synthetic_part(np.random.default_rng(0), {"base": 2.0})
    # how hard a test PDP is for a learned model (not for the genie): shared by every model, so
    # each gap varies with the PDPs drawn, but a difference between two models hardly does
    hard = rng.uniform(0.5, 1.5, 40)[ref.pdp_index]
    job = lambda m, r, n: {"method": m, "r": r, "trainable_parameters": n, "wall_s": 1.0}  # noqa: E731
    cells = {}
    for budget, n, offsets in [(8, 8, {"lora_r1": 1.6, "full_ft": 1.9, "scratch": 6.0}),
                               ("all", 100, {"lora_r1": 1.05, "full_ft": 1.0, "scratch": 1.5})]:
        part = synthetic_part(np.random.default_rng(0), {})  # same samples as the reference
        part.errors = {k: part.errors["lmmse_genie"] * 10 ** (v / 10) * hard * rng.uniform(0.95, 1.05, len(hard))
                       for k, v in offsets.items()}
        part.meta = {"budget": budget, "target_pdps": n,
                     "jobs": {"lora_r1": job("lora", 1, 10), "full_ft": job("full_ft", None, 1000),
                              "scratch": job("scratch", None, 1000)}}
        cells[budget] = part
    df = table(ref, cells, n_boot=300, seed=7)
    row = {(m, n): r for m, n, r in zip(df.method, df.target_pdps, df.itertuples())}
    assert abs(row["base", 0].gap_to_genie_db - 2.0) < 0.05
    assert abs(row["scratch", 8].gap_to_genie_db - 6.0) < 0.5  # 6 dB + the PDPs' hardness
    assert row["full_ft", 100].delta_vs_full_ft_all_db == 0.0
    assert abs(row["lora", 100].delta_vs_full_ft_all_db - 0.05) < 0.03
    for r in df.itertuples():
        assert r.ci_low_db <= r.gap_to_genie_db <= r.ci_high_db
        assert r.delta_ci_low_db <= r.delta_vs_full_ft_all_db <= r.delta_ci_high_db
    # the gain over the zero-shot base (2 dB): about 1 dB for full fine-tuning on all PDPs, and
    # negative (a worse model than not adapting, with an interval below zero) from scratch on 8
    assert row["base", 0].gain_vs_base_db == 0.0
    assert abs(row["full_ft", 100].gain_vs_base_db - 1.0) < 0.3
    assert row["scratch", 8].gain_ci_high_db < 0
    for r in df.itertuples():
        assert r.gain_vs_base_db == pytest.approx(row["base", 0].gap_to_genie_db - r.gap_to_genie_db, abs=2e-3)
    # the paired difference is far tighter than either gap's own interval
    lora_all = row["lora", 100]
    assert (lora_all.delta_ci_high_db - lora_all.delta_ci_low_db) < 0.3 * (lora_all.ci_high_db - lora_all.ci_low_db)
    w = wide(df, SCENARIO)
    assert list(w.columns) == ["target_pdps", "base", "lora_r1", "full_ft", "scratch"]
    assert list(w.target_pdps) == [8, 100]
    s = summary(df)[SCENARIO]
    assert s["pdps_within_0.1db_of_full_ft_all"] == {"lora_r1": 100, "full_ft": 100, "scratch": None}
    assert s["gap_to_genie_db"]["scratch"]["8"] == row["scratch", 8].gap_to_genie_db


def test_frontier_params_defaults_are_the_documented_grid():
    fp = FrontierParams()
    assert fp.budgets == (8, 32, 128, "all") and fp.ranks == (1, 4, 16)
    assert dataclasses.replace(fp, workers=1).workers == 1
