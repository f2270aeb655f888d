"""Smoke test of the paper-scale profile: `profiles/paper.yaml` runs the whole `dvc repro` on the CPU.

The paper numerology (3,072 subcarriers, 512 pilots, the ~530-delay prior grid) and the paper
model sizes are kept; only the amounts shrink: 30 PDPs per scenario, two sources and two targets,
a few training steps on batches of 4, a few validation and test samples. It checks that the
profile is consistent end to end (every stage runs and writes finite metrics), not its results.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import yaml

from conftest import ENVIRON, REPO, SOURCES, background_result, background_run, merge, ran, temp_repo

TARGETS = ["InF_Los", "NYU_InF"]  # a Sionna target and the profile's NYUSIM site

pytestmark = pytest.mark.slow

#: what shrinks (everything else is profiles/paper.yaml as committed)
SMALL = {
    "pdp": {"n_drops": 30},
    "scenarios": {"sources": SOURCES, "targets": TARGETS},
    "preprocess": {"split": {"train": 0.6, "val": 0.2, "test": 0.2}},
    "base": {"steps": 3, "batch_size": 4, "warmup_steps": 1, "val_every": 3, "val_samples": 2,
             "checkpoint_every": 3, "device": "cpu"},
    "lora": {"steps": 2, "batch_size": 4, "warmup_steps": 1, "val_every": 2, "val_samples": 2,
             "checkpoint_every": 2, "device": "cpu"},
    "eval": {"snr_db": [0.0, 20.0], "n_samples": 6, "cross_n_samples": 3, "device": "cpu"},
}


def numbers(node, skip: str = "_ci_db") -> list[float]:
    """Every number in a nested JSON value, except under keys ending in ``skip``: bootstrap intervals
    over 3-8 test PDPs can be undefined (a replicate without a sample at some SNR)."""
    if isinstance(node, dict):
        return [x for k, v in node.items() if not k.endswith(skip) for x in numbers(v, skip)]
    if isinstance(node, list):
        return [x for v in node for x in numbers(v, skip)]
    return [float(node)] if isinstance(node, (int, float)) and not isinstance(node, bool) else []


@background_run("paper_run")
def build_paper_run(work):
    """`dvc repro` of the shrunk paper profile in a temp git repo (started at collection, in the
    background, after the end-to-end ``pipeline``: see conftest)."""
    params = merge(yaml.safe_load((REPO / "profiles/paper.yaml").read_text()), SMALL)
    sh = temp_repo(work, params, environ=ENVIRON)
    return SimpleNamespace(work=work, out=sh("dvc", "repro"))


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    return background_result("paper_run", tmp_path_factory)


def test_paper_profile_runs_the_whole_pipeline(paper_run):
    paper = yaml.safe_load((REPO / "profiles/paper.yaml").read_text())
    assert paper["ofdm"]["n_subcarriers"] == 3072 and paper["ofdm"]["pilot_spacing"] == 6
    stages = ran(paper_run.out)
    expected = {"sites", "train_base", "plot"} | {f"transfer@{t}" for t in TARGETS}
    assert expected <= stages, sorted(stages)
    assert len(stages - expected) >= 1, sorted(stages)  # the evaluation stage(s), whatever their names

    w = paper_run.work
    for path in ["models/base/model.safetensors", "reports/train_base.json", "reports/metrics.json",
                 "reports/nmse_vs_snr.csv", *[f"models/lora/{t}/adapter_model.safetensors" for t in TARGETS]]:
        assert (w / path).is_file(), path
    base = json.loads((w / "reports/train_base.json").read_text())
    assert base["steps"] == 3 and base["parameters"] > 1_000_000  # the paper-size model
    assert json.loads((w / "models/base/config.json").read_text())["n_subcarriers"] == 3072
    metrics = json.loads((w / "reports/metrics.json").read_text())
    assert set(SOURCES + TARGETS) <= set(metrics), sorted(metrics)
    for t in TARGETS:
        assert "lora" in json.dumps(metrics[t])
    values = numbers(metrics)
    assert len(values) > 20 and all(math.isfinite(x) for x in values)
