"""Sharing through a DVC remote: `dvc push` from the tiny pipeline's repo, `git clone` + `dvc pull`
elsewhere, and the clone is complete: `dvc status` clean, `dvc repro` runs nothing, adapters load."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import pytest

from conftest import TARGETS, ran

pytestmark = pytest.mark.slow

# Outputs a clone can only get from the remote (DVC-cached, git-ignored), checked byte for byte;
# models/base_state.pt is `persist: true` (the resumable checkpoint).
CACHED = ["models/base/model.safetensors", "models/base_state.pt", "data/processed/UMa_Los.npz",
          "reports/figures/delay_spread_cdf.png"] + [
    f"models/lora/{t}/{f}" for t in TARGETS for f in ("adapter_config.json", "adapter_model.safetensors")]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def shared(pipeline, tmp_path_factory):
    """Push the fixture repo's committed results to a local-folder remote and pull them in a clone.
    The remote is configured with `--local` (.dvc/config.local, git-ignored) in both repos, so no
    tracked file changes."""
    sh, src = pipeline.sh, pipeline.work
    root = tmp_path_factory.mktemp("share")
    remote, clone = root / "remote", root / "clone"

    def in_clone(*cmd: str) -> str:
        return sh("bash", "-c", f"cd {shlex.quote(str(clone))} && {shlex.join(cmd)}")

    ns = {"src_git_status": sh("git", "status", "--porcelain"), "src_status": sh("dvc", "status")}
    sh("dvc", "remote", "add", "--local", "-d", "storage", str(remote))
    ns["push"] = sh("dvc", "push")
    ns["cloud_status"] = sh("dvc", "status", "--cloud")
    sh("git", "clone", "-q", str(src), str(clone))
    ns["clone_before_pull"] = {p: (clone / p).exists() for p in CACHED}
    in_clone("dvc", "remote", "add", "--local", "-d", "storage", str(remote))
    ns["pull"] = in_clone("dvc", "pull")
    ns["clone_status"] = in_clone("dvc", "status")
    ns["clone_repro"] = in_clone("dvc", "repro")
    ns["clone_git_status"] = in_clone("git", "status", "--porcelain")
    ns["inspect"] = {t: in_clone("python", "-m", "chanest.inspect_adapter", f"models/lora/{t}")
                     for t in TARGETS}
    ns.update(src=src, clone=clone, remote=remote)
    return ns


def test_source_is_consistent_before_pushing(shared):
    assert shared["src_git_status"].strip() == "", shared["src_git_status"]
    assert "up to date" in shared["src_status"], shared["src_status"]
    assert "in sync" in shared["cloud_status"], shared["cloud_status"]  # everything reached the remote
    assert "pushed" in shared["push"]


def test_clone_gets_the_data_and_models_only_from_the_remote(shared):
    assert not any(shared["clone_before_pull"].values()), shared["clone_before_pull"]
    for p in CACHED:
        assert md5(shared["clone"] / p) == md5(shared["src"] / p), p


def test_pulled_clone_is_up_to_date_and_repro_runs_nothing(shared):
    assert "up to date" in shared["clone_status"], shared["clone_status"]
    assert "Running stage" not in shared["clone_repro"] and ran(shared["clone_repro"]) == set(), \
        shared["clone_repro"]
    assert shared["clone_git_status"].strip() == "", shared["clone_git_status"]  # nothing rewritten


def test_cache_false_metrics_come_with_git_not_the_remote(shared):
    metrics = json.loads((shared["clone"] / "reports/metrics.json").read_text())
    assert metrics == json.loads((shared["src"] / "reports/metrics.json").read_text())


def test_pulled_adapters_load_onto_the_pulled_base(shared):
    for t, out in shared["inspect"].items():
        info = json.loads(out[out.index("{"):out.rindex("}") + 1])
        assert info["scenario"] == t and info["trainable_parameters"] > 0, info
        assert info["base_matches"] and info["loads_cleanly"], info
