"""The research experiment (research/dvc.yaml) on tiny amounts: the real `dvc repro`, twice, and a
`dvc exp run -S` on its own params file, in a temp git repo.

The numerology (3,072 subcarriers, a pilot every 6th, CP 590 ns) and the committed NYUSIM files
are the research's; only the model, the steps and the sample counts shrink. The checks: every
stage runs from the committed data alone, writes into research/ (the default pipeline's files stay
as committed), a second run runs nothing, a LoRA rank change re-runs only what depends on it, and
the operating-point metrics hold every method with intervals.
"""

from __future__ import annotations

import json
import math

import pytest
import yaml

from conftest import REPO, merge, ran, temp_repo

pytestmark = pytest.mark.slow

TARGETS = ["RMa_Los"]
SMALL = {
    "scenarios": {"sources": ["UMa_Nlos"], "targets": TARGETS},
    "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32, "delay_channels": 8, "delay_blocks": 1},
    "base": {"steps": 3, "batch_size": 4, "warmup_steps": 1, "val_every": 3, "val_samples": 2,
             "checkpoint_every": 3},
    "lora": {"steps": 2, "batch_size": 4, "warmup_steps": 1, "val_every": 2, "val_samples": 2,
             "checkpoint_every": 2, "rank_pattern": {}},
    "eval": {"snr_db": [0.0, 20.0], "n_samples": 6, "cross_n_samples": 3, "n_boot": 100},
    "points": {"snr_db": {"RMa_Los": 6.2, "UMa_Nlos": 10.0}, "n_samples": 8},
    "link": {"targets": TARGETS, "methods": ["perfect", "ls", "nomp", "lora"], "mcs_index": [5], "n_prb": 2,
             "batch_size": 4, "min_errors": 1, "max_blocks": 8, "calibration_samples": 4, "n_boot": 100,
             "workers": 1},
}
SOURCES = SMALL["scenarios"]["sources"]
DATA = ({f"{s}_sources@{x}" for s in ("pdp", "eval_base") for x in SOURCES}
        | {f"{s}_targets@{t}" for s in ("pdp", "eval_base") for t in TARGETS})
STAGES = ({"sites", "train_base", "eval_lora", "report", "points", "plot"} | DATA
          | {f"transfer@{t}" for t in TARGETS})


def names(output: str) -> set[str]:
    """Stage names that ran, without the ``research/dvc.yaml:`` prefix."""
    return {s.split(":", 1)[-1] for s in ran(output)}


@pytest.fixture(scope="module")
def research(tmp_path_factory):
    work = tmp_path_factory.mktemp("research") / "repo"
    params = merge(yaml.safe_load((REPO / "research/params.yaml").read_text()), SMALL)
    params["points"]["snr_db"] = SMALL["points"]["snr_db"]  # replaced, not merged key by key
    sh = temp_repo(work, params, path="research/params.yaml")
    out = {"first": sh("dvc", "repro", "research/dvc.yaml"), "second": sh("dvc", "repro", "research/dvc.yaml")}
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "research results")
    return work, out, sh


def test_the_research_pipeline_runs_end_to_end_then_nothing(research):
    work, out, _ = research
    assert names(out["first"]) == STAGES, sorted(names(out["first"]))
    assert names(out["second"]) == set(), out["second"]
    r = work / "research"
    config = json.loads((r / "models/base/config.json").read_text())
    assert config["n_subcarriers"] == 3072 and len(config["pilot_indices"]) == 512
    stats = {s: json.loads((r / f"reports/pdp_stats/{s}.json").read_text()) for s in ("RMa_Los", "UMa_Nlos")}
    assert stats["RMa_Los"]["n"] == 514 and stats["UMa_Nlos"]["n"] == 992  # the committed NYUSIM files
    # the default pipeline's committed results are not touched, nor its outputs made
    assert (work / "reports/metrics.json").read_bytes() == (REPO / "reports/metrics.json").read_bytes()
    assert not (work / "models").exists() and not (work / "data/processed").exists()


def test_operating_points_hold_every_method_with_intervals(research):
    work, _, _ = research
    points = json.loads((work / "research/reports/points.json").read_text())
    assert {s: p["snr_db"] for s, p in points.items()} == {"RMa_Los": 6.2, "UMa_Nlos": 10.0}
    for scenario, p in points.items():
        assert p["n_samples"] == 8
        methods = ("ls", "lmmse_stat", "lmmse_genie", "base") + (("lora",) if scenario in TARGETS else ())
        for m in methods:
            lo, hi = p[m]["nmse_ci_db"]
            assert math.isfinite(p[m]["nmse_db"]) and lo <= p[m]["nmse_db"] <= hi, (m, p[m])
        assert p["lmmse_genie"]["gap_to_genie_db"] == 0.0
    assert len(points["RMa_Los"]["lora_gain_ci_db"]) == 2 and "lora" not in points["UMa_Nlos"]  # a source: no adapter


def test_a_lora_rank_change_reruns_only_what_depends_on_it(research):
    _, _, sh = research
    exp = sh("dvc", "exp", "run", "research/dvc.yaml", "-S", "research/params.yaml:lora.r=2")
    assert names(exp) == STAGES - DATA - {"sites", "train_base"}, sorted(names(exp))


def test_the_research_link_runs_on_the_research_models(research):
    """research-link/dvc.yaml on the research pipeline's models: BLER curves of every method on
    the FR2 resource grid, their 10% SNRs with paired differences, the calibration check."""
    work, _, sh = research
    out = sh("dvc", "repro", "research-link/dvc.yaml")
    assert {s.split(":", 1)[-1] for s in ran(out)} == {"grid_link@RMa_Los", "grid_link_report"}, out
    link = json.loads((work / "research/reports/link/link.json").read_text())["RMa_Los"]
    assert set(link) == {"perfect", "ls", "nomp", "lora", "calibration"}
    for method in ("ls", "nomp", "lora"):
        entry = link[method]["qpsk_r0.37"]
        assert entry["n_blocks"] >= 8 and "loss_vs_perfect_db" in entry
        assert [r["snr_db"] for r in link["calibration"][method]] == [0.0, 10.0, 20.0, 30.0]
    assert "gain_vs_ls_db" in link["lora"]["qpsk_r0.37"]
    assert (work / "research/reports/link/figures/bler_RMa_Los.png").is_file()
    assert "research-link/dvc.yaml:grid_link" not in sh("dvc", "status", "research-link/dvc.yaml")
