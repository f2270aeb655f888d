"""Shared fixtures: repository paths, the real NYUSIM PDP files, small PDP sets and numerology."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import yaml

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import PDP, PDPSet

REPO = Path(__file__).resolve().parents[1]
NYUSIM_PDP = REPO / "data" / "nyusim-28ghz"  # the research's files, committed (see its README)


@pytest.fixture(scope="session")
def nyusim_dir() -> Path:
    """The ten NYUSIM 28 GHz files of the research, committed with the repository."""
    assert NYUSIM_PDP.is_dir(), f"{NYUSIM_PDP} missing: it is part of the repository"
    return NYUSIM_PDP


def exponential_pdps(n: int, seed: int, scenario: str = "UMa_Nlos", ds_ns: float = 100.0) -> PDPSet:
    """``n`` random PDPs with ~20 taps and an exponential power profile (delay spread ~ds_ns)."""
    rng = np.random.default_rng(seed)
    pdps = []
    for _ in range(n):
        taps = int(rng.integers(5, 21))
        delays = np.sort(np.concatenate([[0.0], rng.exponential(ds_ns * 1e-9, taps - 1)]))
        powers = np.exp(-delays / (ds_ns * 1e-9)) * rng.uniform(0.5, 1.0, taps)
        pdps.append(PDP(delays, powers / powers.sum()))
    return PDPSet.from_pdps(scenario, pdps)


@pytest.fixture(scope="session")
def small_ofdm() -> OFDMConfig:
    """48 subcarriers at 30 kHz, comb-2 pilots: fast enough for training tests."""
    return OFDMConfig(n_subcarriers=48, fft_size=64)


# --------------------------------------------------------------------------------------------
# The end-to-end pipeline on tiny params (shared by the slow tests)
# --------------------------------------------------------------------------------------------

# Sionna sources, a Sionna target and a site of one's own: Factory_A, read from a .mat file (the
# research's NYUSIM InF LOS drops, copied in as if measured)
SOURCES, TARGETS = ["UMa_Los", "UMi_Nlos"], ["InF_Los", "Factory_A"]
SITE_FILE = ("data/site_files/PDP_Factory_A.mat", NYUSIM_PDP / "PDP_InF_Los.mat")
#: a second site, added to the targets at the end of the run (its own chain alone must run)
NEW_SITE = ("data/site_files/PDP_Plant_B.mat", NYUSIM_PDP / "PDP_RMa_Los.mat")
#: A method of one's own, as a user writes it: one module in chanest/evaluation/plugins/ (the
#: end-to-end test drops it there and edits nothing else).
PLUGIN = ("chanest/evaluation/plugins/ls_nearest.py", '''"""LS at the pilots, held to the nearest pilot."""

NAME = "ls_nearest"
LABEL = "LS + nearest pilot"
COLOR = "#bcbd22"
MARKER = "*"


def build(context):
    import torch

    pilots = torch.as_tensor(context.ofdm.pilot_indices)
    nearest = (torch.arange(context.ofdm.n_subcarriers)[:, None] - pilots[None, :]).abs().argmin(-1)
    return lambda batch: batch.h_ls[:, nearest.to(batch.h_ls.device)]
''')
TINY = {
    "pdp": {"n_drops": 40},
    "scenarios": {"sources": SOURCES, "targets": TARGETS},
    "preprocess": {"split": {"train": 0.6, "val": 0.2, "test": 0.2}},
    "ofdm": {"n_subcarriers": 96, "fft_size": 128},
    "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
    "base": {"steps": 10, "batch_size": 16, "val_every": 5, "val_samples": 8, "checkpoint_every": 5},
    "lora": {"steps": 6, "batch_size": 16, "val_every": 3, "val_samples": 8, "r": 4, "rank_pattern": {},
             "full_ft": True, "scratch": True, "scratch_steps": 6, "target_pdps": 10},
    "frontier": {"budgets": [4, "all"], "ranks": [1, 4, 16], "workers": 2},
    "link": {"methods": ["perfect", "ls", "lora"], "mcs_index": [7], "batch_size": 8, "min_errors": 4,
             "max_blocks": 16, "n_boot": 100},
    "eval": {"n_samples": 60, "cross_n_samples": 20, "snr_db": [0.0, 10.0, 20.0]},
    "peers": {"reesnet": {"channels": 4, "blocks": 1, "kernel": 3}, "v4": {"n_layers": 1}},
}


def merge(base: dict, over: dict) -> dict:
    for k, v in over.items():
        nested = isinstance(v, dict) and v and isinstance(base.get(k), dict)
        base[k] = merge(base[k], v) if nested else v
    return base


def repo_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: what a commit of this working tree holds."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if (REPO / f).is_file()]


#: Every pipeline of the repository (its ``dvc.yaml`` files, sorted), for the tests that read them all.
PIPELINES = tuple(sorted(f for f in repo_files() if f.split("/")[-1] == "dvc.yaml"))


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


#: The environment at the start of the session, for the end-to-end fixture's commands: they run in a
#: thread while other tests run, and must not see those tests' ``monkeypatch.setenv``.
ENVIRON = dict(os.environ)


def shell(work: Path, environ: dict[str, str] | None = None) -> Callable[..., str]:
    """``sh(*cmd)`` in ``work``, from ``environ`` (default: the current environment) with the venv on
    PATH, no analytics and a git identity; it asserts the command succeeds and returns its stdout +
    stderr."""
    venv_bin = Path(os.sys.executable).parent
    environ = os.environ if environ is None else environ
    env = {**environ, "PATH": f"{venv_bin}:{environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "chanest-test", "GIT_AUTHOR_EMAIL": "test@chanest.invalid",
           "GIT_COMMITTER_NAME": "chanest-test", "GIT_COMMITTER_EMAIL": "test@chanest.invalid",
           "PYTHONPATH": ""}

    def sh(*cmd: str) -> str:
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout + proc.stderr

    return sh


def temp_repo(work: Path, params: dict, path: str = "params.yaml",
              files: dict[str, Path] | None = None, environ: dict[str, str] | None = None) -> Callable[..., str]:
    """Copy this working tree into ``work`` (and ``files``: ``{path there: file here}``), write
    ``params`` as its ``path`` (the default pipeline's params.yaml, or e.g.
    research/params.yaml), commit it in a fresh git repo and return
    ``sh(*cmd)``: runs a command there (venv on PATH, no analytics, a git identity), asserts it
    succeeds and returns its stdout + stderr. The commands start from ``environ`` (default: the
    current environment)."""
    for f in repo_files():
        (work / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, work / f)
    for there, here in (files or {}).items():
        (work / there).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(here, work / there)
    (work / path).write_text(yaml.safe_dump(params, sort_keys=False))
    sh = shell(work, environ)
    sh("git", "init", "-q")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "params")
    return sh


def sites_and_plugin(work: Path, sh: Callable[..., str]) -> tuple[str, str, str, str]:
    """In the e2e repo ``work``: a new site among the targets, then a change of its file, then gone
    again; then a method of one's own dropped in as one file (PLUGIN). The output of each repro."""
    text = (work / "params.yaml").read_text()
    old = "targets:\n  - InF_Los\n  - Factory_A\n"
    assert text.count(old) == 1 and text.count("    file: PDP_Factory_A.mat\n") == 1, text
    text = text.replace(old, old + "  - Plant_B\n").replace(
        "    file: PDP_Factory_A.mat\n", "    file: PDP_Factory_A.mat\n  Plant_B:\n    source: mat\n    file: PDP_Plant_B.mat\n")
    (work / "params.yaml").write_text(text)
    added = sh("dvc", "repro")
    (work / NEW_SITE[0]).write_bytes((NYUSIM_PDP / "PDP_InF_Nlos.mat").read_bytes())  # the site re-measured
    changed = sh("dvc", "repro")
    sh("git", "checkout", "--", "params.yaml", NEW_SITE[0])
    removed = sh("dvc", "repro")
    (work / PLUGIN[0]).write_text(PLUGIN[1])  # one file, nothing else edited
    return added, changed, removed, sh("dvc", "repro")


#: The end-to-end runs built in the background, by the name of the fixture their tests use:
#: name -> builder(work directory). Test modules add theirs with :func:`background_run`.
BACKGROUND: dict[str, Callable[[Path], object]] = {}
_RUNS: dict = {}


def background_run(name: str) -> Callable:
    """Register the decorated ``builder(work)`` as the background run of fixture ``name``."""
    def register(builder: Callable[[Path], object]) -> Callable[[Path], object]:
        BACKGROUND[name] = builder
        return builder
    return register


def pytest_collection_finish(session) -> None:
    """Start the background runs (:data:`BACKGROUND`) that a collected test needs, one after the
    other in one thread, as soon as collection ends. They are mostly DVC and stage processes starting
    up (one thread each), so on 2 cores they run beside the other tests instead of after them; each
    run's tests wait for it (:func:`background_result`). Their commands start from :data:`ENVIRON`.
    ``--collect-only`` starts nothing."""
    wanted = [n for n in BACKGROUND if any(n in item.fixturenames for item in session.items)]
    if wanted and "pool" not in _RUNS and not session.config.option.collectonly:
        _RUNS["pool"] = ThreadPoolExecutor(max_workers=1)
        for name in wanted:
            work = session.config._tmp_path_factory.mktemp(name) / "repo"
            _RUNS[name] = _RUNS["pool"].submit(BACKGROUND[name], work)


def pytest_sessionfinish(session, exitstatus) -> None:
    if "pool" in _RUNS:
        _RUNS["pool"].shutdown(wait=True)


def background_result(name: str, tmp_path_factory) -> object:
    """The result of background run ``name``; built here and now if it was not started at collection."""
    if name not in _RUNS:
        return BACKGROUND[name](tmp_path_factory.mktemp(name) / "repo")
    return _RUNS[name].result()


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> SimpleNamespace:
    """The end-to-end run (:func:`build_pipeline`), started at collection; its result."""
    return background_result("pipeline", tmp_path_factory)


@background_run("pipeline")
def build_pipeline(work: Path) -> SimpleNamespace:
    """The real `dvc repro` (twice), a forced `pdp` re-run, `dvc exp run -S lora.r=2`, `metrics diff`,
    `exp show` and `plots show` on TINY params in a temp git repo, then the frontier (twice: a
    budget added), the link and peers pipelines, a site added, changed and removed, and a method
    of one's own dropped in (PLUGIN); run once per test session."""
    params = merge(yaml.safe_load((REPO / "params.yaml").read_text()), TINY)
    params["pdp"]["mat_dir"] = "data/site_files"
    params["sites"] = {"Factory_A": {"source": "mat", "file": "PDP_Factory_A.mat"}}
    sh = temp_repo(work, params, files=dict([SITE_FILE, NEW_SITE]), environ=ENVIRON)
    ns = SimpleNamespace(work=work, sh=sh)
    ns.first = sh("dvc", "repro")
    ns.second = sh("dvc", "repro")
    sh("dvc", "repro", "-f", "-s", "pdp_sources")  # the same PDPs again: byte-identical files ...
    ns.status_after_rerun = sh("dvc", "status", "dvc.yaml")  # ... so nothing downstream is out of date
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "results, r=4")
    ns.metrics_before = json.loads((work / "reports/metrics.json").read_text())
    ns.exp = sh("dvc", "exp", "run", "-S", "lora.r=2")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "results, r=2")
    ns.metrics_diff = sh("dvc", "metrics", "diff", "HEAD~1", "HEAD", "--json")
    ns.exp_show = sh("dvc", "exp", "show", "--csv")
    ns.plots = sh("dvc", "plots", "show", "-o", str(work / "dvc_plots"))
    # Sites and a method of one's own, in a copy of the repo (outputs and cache included) so that the
    # repo the other tests read stays as committed. The copy's DVC commands run in a thread beside
    # the frontier, link and peers pipelines below: two repos, no shared DVC state, and on 2 cores
    # a stage's start-up (imports, one thread) leaves the other core mostly idle.
    sites = work.parent / "sites"
    shutil.copytree(work, sites, symlinks=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        site_runs = pool.submit(sites_and_plugin, sites, shell(sites, ENVIRON))
        # the frontier (frontier/dvc.yaml), then a budget added to its list
        ns.frontier_first = sh("dvc", "repro", "frontier/dvc.yaml")
        ns.frontier_csv_first = (work / "reports/frontier.csv").read_text()
        # (edited as text: a YAML round trip would turn `dvc exp run`'s bare `amp: off` into `false`)
        text = (work / "params.yaml").read_text()
        assert text.count("budgets:\n  - 4\n  - all\n") == 1, text
        (work / "params.yaml").write_text(text.replace("budgets:\n  - 4\n  - all\n", "budgets:\n  - 4\n  - 8\n  - all\n"))
        ns.frontier_status = sh("dvc", "status", "frontier/dvc.yaml")
        ns.frontier_second = sh("dvc", "repro", "frontier/dvc.yaml")
        ns.frontier_plots = sh("dvc", "plots", "show", "-o", str(work / "frontier_plots"))
        ns.link = sh("dvc", "repro", "link/dvc.yaml")  # the PUSCH link (link/dvc.yaml)
        ns.peers = sh("dvc", "repro", "peers/dvc.yaml")  # the deep-learning peers (peers/dvc.yaml)
        ns.peers_again = sh("dvc", "repro", "peers/dvc.yaml")
        sh("git", "add", "-A")
        sh("git", "commit", "-qm", "frontier and link results")
        ns.site_added, ns.site_changed, ns.site_removed, ns.plugin = site_runs.result()
    ns.plugin_work = sites
    return ns
