"""Scenarios by name, each with its own PDP source (chanest.channel.sites)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml

from chanest import config
from chanest.channel.pdp import name_key, read_mat
from chanest.channel.sites import SiteError
from chanest.utils.params import load_params
from conftest import REPO

PARAMS = load_params(REPO / "params.yaml")


def with_changes(**changes) -> dict:
    """The committed params with ``"a.b": value`` changes (value None: the key removed)."""
    params = copy.deepcopy(PARAMS)
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = params
        for part in path:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return params


def test_name_keys_are_stable_golden_values():
    """Seeds derive from names through SHA-256: the same numbers on every machine and Python."""
    assert name_key("UMa_Los") == 3932258322
    assert name_key("Factory_A") == 4129744182
    assert len({name_key(n) for n in ("InF_Los", "InF_Nlos", "NYU_InF", "NYU_RMa", "Factory_A")}) == 5


def test_builtin_names_are_shorthand_and_sites_name_their_source():
    sites = config.sites(PARAMS)
    assert list(sites) == PARAMS["scenarios"]["sources"] + PARAMS["scenarios"]["targets"]
    uma = sites["UMa_Los"]
    assert (uma.source, uma.tr38901, uma.carrier_ghz, uma.n_drops) == ("tr38901", "UMa_Los", 3.5, 2000)
    nyu = sites["NYU_InF"]
    assert nyu.source == "mat" and nyu.path == os.path.join("data/nyusim-28ghz", "PDP_InF_Los.mat")
    # the switch for the built-in names leaves sites alone
    files = config.sites(with_changes(**{"pdp.source": "mat_dir"}))
    assert files["UMa_Los"].path == os.path.join("data/nyusim-28ghz", "PDP_UMa_Los.mat")
    assert files["NYU_RMa"].path == os.path.join("data/nyusim-28ghz", "PDP_RMa_Los.mat")
    # a Sionna site with its own settings, and a built-in name overridden
    params = with_changes(**{"sites.Campus_B": {"source": "tr38901", "model": "UMi", "los": False,
                                                "carrier_ghz": 28.0, "n_drops": 50},
                             "sites.InF_Los": {"source": "mat", "file": "PDP_InF_Nlos.mat"},
                             "scenarios.targets": ["InF_Los", "Campus_B"]})
    sites = config.sites(params)
    assert (sites["Campus_B"].tr38901, sites["Campus_B"].carrier_ghz, sites["Campus_B"].n_drops) == ("UMi_Nlos", 28.0, 50)
    assert sites["InF_Los"].path.endswith("PDP_InF_Nlos.mat")


@pytest.mark.parametrize("changes, says", [
    ({"sites.NYU_InF": {"source": "csv", "file": "x.csv"}}, r"sites.NYU_InF.source = 'csv': expected one of tr38901, mat"),
    ({"sites.NYU_InF": {"source": "mat", "file": "../etc/PDP.mat"}}, r"sites.NYU_InF.file = '../etc/PDP.mat': expected a .mat file name inside pdp.mat_dir"),
    ({"sites.NYU_InF": {"source": "mat", "path": "PDP_InF_Los.mat"}}, r"sites.NYU_InF: unknown key\(s\) \['path'\]"),
    ({"sites.NYU_InF": {"source": "tr38901", "model": "UMx", "los": True}}, r"sites.NYU_InF.model = 'UMx'"),
    ({"sites.NYU_InF": {"source": "tr38901", "model": "UMi", "los": "yes"}}, r"sites.NYU_InF.los = 'yes': expected true or false"),
    ({"sites.NYU_InF": {"source": "tr38901", "model": "UMi", "los": True, "n_drops": 0}}, r"sites.NYU_InF.n_drops = 0"),
    ({"sites.NYU_InF": None}, r"scenario 'NYU_InF' is not a built-in name .* no entry under sites"),
    ({"sites.Bad Name": {"source": "mat", "file": "x.mat"}}, r"params: sites: scenario name 'Bad Name' is not safe"),
    ({"scenarios.targets": ["InF_Los", "Site/../x"]}, r"scenarios.targets\[1\]: scenario name 'Site/../x' is not safe"),
    ({"scenarios.targets": ["InF_Los", "RMa_Los", "InF_Los"]}, r"scenarios.targets lists 'InF_Los' twice"),
    ({"scenarios.targets": ["UMa_Los", "InF_Los"]}, r"'UMa_Los' is in both scenarios.sources and scenarios.targets"),
    ({"scenarios.sources": []}, r"scenarios.sources is empty"),
])
def test_bad_scenarios_and_sites_are_params_errors_naming_the_key(changes, says):
    with pytest.raises(SiteError, match=says):
        config.scenarios(with_changes(**changes))


def run_stage(tmp_path, params: dict, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run([sys.executable, "-m", *args], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_sites_stage_stops_on_a_missing_file_before_writing_anything(tmp_path):
    """A missing site file fails the `sites` stage at once (exit 1, the key and the path named),
    and writes nothing."""
    (tmp_path / "pdps").mkdir()
    params = with_changes(**{"pdp.mat_dir": "pdps", "sites.Factory_A": {"source": "mat", "file": "PDP_Factory_A.mat"},
                             "scenarios.targets": ["Factory_A"]})
    proc = run_stage(tmp_path, params, "stages.sites")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "params: sites.Factory_A.file: no such PDP file pdps/PDP_Factory_A.mat" in proc.stderr
    assert "Traceback" not in proc.stderr and "UMa_Los" not in proc.stderr and not (tmp_path / "data").exists()


def test_pdp_stages_mix_sionna_sources_and_file_sites(tmp_path):
    """Sionna sources beside a file site: `sites` gives each scenario its own folder (the file
    copied as is), and a Sionna scenario's PDPs depend on its name and the seed only (not on which
    other scenarios params list)."""
    from chanest.channel.preprocess import load_processed

    (tmp_path / "pdps").mkdir()
    nyusim = REPO / "data/nyusim-28ghz/PDP_InF_Los.mat"
    (tmp_path / "pdps/factory.mat").write_bytes(nyusim.read_bytes())
    params = with_changes(**{"pdp.mat_dir": "pdps", "pdp.n_drops": 6,
                             "scenarios.sources": ["UMa_Los", "UMi_Nlos"], "scenarios.targets": ["Factory_A"],
                             "sites.Factory_A": {"source": "mat", "file": "factory.mat"}})
    proc = run_stage(tmp_path, params, "stages.sites")
    assert proc.returncode == 0, proc.stderr[-2000:]
    sites = tmp_path / "data/sites"
    assert sorted(p.name for p in sites.iterdir()) == ["Factory_A", "UMa_Los", "UMi_Nlos"]
    assert (sites / "Factory_A/PDP_Factory_A.mat").read_bytes() == nyusim.read_bytes()
    before = {p: p.read_bytes() for p in sites.rglob("*") if p.is_file() and "UMi_Nlos" in str(p)}
    for name, group in (("Factory_A", "targets"), ("UMi_Nlos", "sources")):
        proc = run_stage(tmp_path, params, "stages.pdp", name, group)
        assert proc.returncode == 0, proc.stderr[-2000:]
    factory, want = load_processed(tmp_path / "data/processed/targets", "Factory_A"), read_mat(nyusim)
    stats = json.loads((tmp_path / "reports/pdp_stats/Factory_A.json").read_text())
    assert len(factory) + stats["n_duplicates"] == len(want)
    first = (tmp_path / "data/processed/sources/UMi_Nlos.npz").read_bytes()
    params["scenarios"]["sources"] = ["UMi_Nlos"]  # UMa_Los gone: UMi_Nlos's folder and PDPs the same
    for args in (("stages.sites",), ("stages.pdp", "UMi_Nlos", "sources")):
        proc = run_stage(tmp_path, params, *args)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert {p: p.read_bytes() for p in sites.rglob("*") if p.is_file() and "UMi_Nlos" in str(p)} == before
    assert (tmp_path / "data/processed/sources/UMi_Nlos.npz").read_bytes() == first
