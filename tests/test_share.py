"""Sharing through a DVC remote: `dvc push` from the tiny pipeline's repo, `git clone` + `dvc pull`
elsewhere, and the clone is complete: `dvc status` clean, `dvc repro` runs nothing, adapters load.

Two flows, as docs/sharing.md shows them: a lab that ran every pipeline (`dvc push` / `dvc pull` of each),
and a lab that ran only the default one (`make repro`), whose committed ``frontier/dvc.lock`` and
``link/dvc.lock`` name outputs it never made: it pushes and pulls ``dvc.yaml`` alone."""

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
CACHED = ["models/base/model.safetensors", "models/base_state.pt", "data/processed/sources/UMa_Los.npz",
          "reports/figures/eval/delay_spread_cdf.png"] + [
    f"models/lora/{t}/{f}" for t in TARGETS for f in ("adapter_config.json", "adapter_model.safetensors")]


#: The pipelines the fixture repo ran (not research/dvc.yaml): what docs/sharing.md's flow pushes and pulls.
RAN = ("dvc.yaml", "frontier/dvc.yaml", "link/dvc.yaml")


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

    ns = {"src_git_status": sh("git", "status", "--porcelain"), "src_status": sh("dvc", "status", *RAN)}
    sh("dvc", "remote", "add", "--local", "-d", "storage", str(remote))
    ns["push"] = sh("dvc", "push", *RAN)
    ns["cloud_status"] = sh("dvc", "status", "--cloud", *RAN)
    sh("git", "clone", "-q", str(src), str(clone))
    ns["clone_before_pull"] = {p: (clone / p).exists() for p in CACHED}
    in_clone("dvc", "remote", "add", "--local", "-d", "storage", str(remote))
    ns["pull"] = in_clone("dvc", "pull", *RAN)
    ns["clone_status"] = in_clone("dvc", "status", *RAN)
    ns["clone_repro"] = in_clone("dvc", "repro")
    ns["clone_git_status"] = in_clone("git", "status", "--porcelain")
    ns["inspect"] = {t: in_clone("python", "-m", "chanest.estimators.inspect_adapter", f"models/lora/{t}")
                     for t in TARGETS}
    ns.update(src=src, clone=clone, remote=remote)
    return ns


@pytest.fixture(scope="module")
def default_only(pipeline, tmp_path_factory):
    """docs/sharing.md's flow for a lab that ran only the default pipeline: `dvc push dvc.yaml` to a
    remote of its own, clone, `dvc pull dvc.yaml`. The remote holds none of the frontier's and the
    link's outputs, as for a lab that never ran them (their dvc.lock files are committed)."""
    sh, src = pipeline.sh, pipeline.work
    root = tmp_path_factory.mktemp("share_default")
    remote, clone = root / "remote", root / "clone"

    def in_clone(*cmd: str, check: bool = True) -> str:
        line = f"cd {shlex.quote(str(clone))} && {shlex.join(cmd)}"
        return sh("bash", "-c", line if check else f"{line}; echo exit=$?")

    sh("dvc", "remote", "add", "--local", "default_only", str(remote))
    ns = {"push": sh("dvc", "push", "-r", "default_only", "dvc.yaml")}
    sh("git", "clone", "-q", str(src), str(clone))
    in_clone("dvc", "remote", "add", "--local", "-d", "storage", str(remote))
    ns["plain_pull"] = in_clone("dvc", "pull", check=False)  # what the lab hit before
    ns["pull"] = in_clone("dvc", "pull", "dvc.yaml")
    ns["status"] = in_clone("dvc", "status", "dvc.yaml")
    ns["repro"] = in_clone("dvc", "repro")
    ns["git_status"] = in_clone("git", "status", "--porcelain")
    ns.update(src=src, clone=clone)
    return ns


def test_default_only_lab_pushes_and_pulls_dvc_yaml_and_gets_a_complete_clone(default_only):
    assert "exit=0" not in default_only["plain_pull"]  # the whole repo's outputs: frontier/link missing
    assert "frontier" in default_only["plain_pull"] or "link" in default_only["plain_pull"], \
        default_only["plain_pull"]
    assert "up to date" in default_only["status"], default_only["status"]
    assert ran(default_only["repro"]) == set(), default_only["repro"]
    assert default_only["git_status"].strip() == "", default_only["git_status"]
    for p in CACHED:
        assert md5(default_only["clone"] / p) == md5(default_only["src"] / p), p


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
