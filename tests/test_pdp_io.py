"""The research .mat format: the real NYUSIM files, round trips, and rejection of bad input."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.io

from chanest.utils.io import write_npz
from chanest.channel.pdp import PDP, SCENARIOS, PDPError, check_scenario, read_mat, scenario_from_filename, write_mat
from chanest.channel.preprocess import content_key, normalise
from conftest import REPO


def test_the_ten_real_files_load_with_their_known_properties(nyusim_dir):
    sets = {s: read_mat(nyusim_dir / f"PDP_{s}.mat") for s in SCENARIOS}
    for name, pdps in sets.items():
        assert len(pdps) == 1000, name
        taps = [p.n_taps for p in pdps]
        assert 1 <= min(taps) and max(taps) <= 57, name
        assert all(p.delays_s[0] == 0 and p.k_factor == 0 for p in pdps), name
        assert all(p.delays_s.max() < 5e-6 for p in pdps), name  # delays were in ns, now s
    for name in ("RMa_Los", "RMa_Nlos"):
        assert max(p.n_taps for p in sets[name]) <= 2
        assert max(p.delays_s.max() for p in sets[name]) <= 4e-9
    assert max(p.n_taps for p in sets["InF_Nlos"]) > 10  # rich multipath, unlike RMa
    # UMi_Los holds the same PDPs as UMa_Los; UMi_Nlos = UMa_Nlos up to a power factor per PDP
    for a, b in (("UMa_Los", "UMi_Los"), ("UMa_Nlos", "UMi_Nlos")):
        ka = [content_key(normalise(p, 1.0)[0]) for p in sets[a]]
        kb = [content_key(normalise(p, 1.0)[0]) for p in sets[b]]
        assert ka == kb
    raw_a, raw_b = sets["UMa_Nlos"][0].powers, sets["UMi_Nlos"][0].powers
    assert not np.allclose(raw_a, raw_b, rtol=1e-3, atol=0)
    np.testing.assert_allclose(raw_a / raw_a.sum(), raw_b / raw_b.sum(), rtol=1e-9)


def test_round_trip_keeps_delays_powers_and_k_factor(tmp_path):
    pdps = [PDP(np.array([0.0, 12.5e-9, 80e-9]), np.array([1.0, 0.5, 1e-3]), 3.5),
            PDP(np.array([0.0]), np.array([2e-7]), 0.0)]
    path = tmp_path / "PDP_InF_Los.mat"
    write_mat(path, pdps)
    back = read_mat(path)
    assert [p.k_factor for p in back] == [3.5, 0.0]
    np.testing.assert_allclose(back[0].delays_s, pdps[0].delays_s, rtol=1e-12)
    np.testing.assert_allclose(back[0].powers, pdps[0].powers, rtol=1e-12)
    assert back[1].n_taps == 1
    assert not list(tmp_path.glob("*.tmp*"))  # the temp file was renamed, not left behind


def test_outputs_are_byte_identical_across_runs(tmp_path):
    """DVC hashes bytes: a rewrite of the same PDPs must not look like new data (scipy's MAT
    header and numpy's zip entries would carry the current time)."""
    pdps = [PDP(np.array([0.0, 12.5e-9]), np.array([1.0, 0.5]), 2.0)]
    arrays = {"delays_s": np.zeros((3, 2)), "n_taps": np.arange(3)}
    write_mat(tmp_path / "a.mat", pdps)
    write_npz(tmp_path / "a.npz", **arrays)
    time.sleep(2.1)  # past the 1 s (MAT header) and 2 s (zip) resolution of the timestamps
    write_mat(tmp_path / "b.mat", pdps)
    write_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.mat").read_bytes() == (tmp_path / "b.mat").read_bytes()
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "b.npz") as z:
        assert sorted(z.files) == ["delays_s", "n_taps"] and np.array_equal(z["n_taps"], np.arange(3))


def cells(*arrays):
    c = np.empty((1, len(arrays)), dtype=object)
    for i, a in enumerate(arrays):
        c[0, i] = a
    return c


GOOD = np.array([[0.0, 1e-6], [10.0, 5e-7]])


@pytest.mark.parametrize(
    "content, message",
    [
        ({"pdp_typo": cells(GOOD)}, "expected a variable 'pdp'"),
        ({"pdp": np.ones((3, 2))}, "must be a 1xN cell array"),
        ({"pdp": cells(GOOD, np.ones((4, 3)))}, r"pdp\{2\} \(index 1\): expected an \(n_taps, 2\)"),
        ({"pdp": cells(GOOD, np.array([[0.0, np.nan]]))}, r"index 1\): expected finite"),
        ({"pdp": cells(np.array([[0.0, 1.0], [5.0, -1e-9]]))}, r"index 0\): expected powers > 0"),
        ({"pdp": cells(np.array([[-3.0, 1.0]]))}, r"expected delays >= 0"),
        ({"pdp": cells(np.array([[9.0, 1.0], [2.0, 1.0]]))}, r"expected ascending delays"),
        ({"pdp": cells(np.zeros((0, 2)))}, r"expected an \(n_taps, 2\)"),
    ],
)
def test_bad_mat_content_is_rejected_naming_file_and_index(tmp_path, content, message):
    path = tmp_path / "PDP_UMa_Los.mat"
    scipy.io.savemat(path, content)
    with pytest.raises(PDPError, match=message) as err:
        read_mat(path)
    assert str(path) in str(err.value)


def test_corrupt_file_and_unknown_scenario_are_rejected(tmp_path):
    path = tmp_path / "PDP_UMa_Los.mat"
    path.write_bytes(b"this is not a MATLAB file" * 10)
    with pytest.raises(PDPError, match="not a readable MATLAB .mat file"):
        read_mat(path)
    assert check_scenario("Factory_A") == "Factory_A"  # any safe name is a scenario
    for unsafe in ("UMa Los", "1st_site", "../x", "a" * 41, "InF-Los", ""):
        with pytest.raises(PDPError, match="is not safe"):
            check_scenario(unsafe)
    with pytest.raises(PDPError, match="'Moon Los' is not safe"):
        scenario_from_filename(tmp_path / "PDP_Moon Los.mat")


def test_pdp_stage_fails_cleanly_on_a_bad_file(tmp_path):
    """Exit code 1, the file named in one error line, and nothing of the scenario left half-written."""
    mats = tmp_path / "mats"
    mats.mkdir()
    scipy.io.savemat(mats / "PDP_RMa_Los.mat", {"pdp": cells(GOOD)})
    scipy.io.savemat(mats / "PDP_RMa_Nlos.mat", {"pdp": cells(GOOD, np.array([[0.0, np.nan]]))})
    (tmp_path / "params.yaml").write_text(
        "seed: 1\npdp: {source: mat_dir, mat_dir: mats}\n"
        "scenarios: {sources: [RMa_Los], targets: [RMa_Nlos]}\n"
        "preprocess: {split: {train: 0.8, val: 0.1, test: 0.1}}\nofdm: {}\n"
    )

    def stage(*args):
        return subprocess.run([sys.executable, "-m", *args], cwd=tmp_path, capture_output=True, text=True,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=False)

    assert stage("stages.sites").returncode == 0  # (it copies the files; the pdp stage reads them)
    assert stage("stages.pdp", "RMa_Los", "sources").returncode == 0
    proc = stage("stages.pdp", "RMa_Nlos", "targets")
    assert proc.returncode == 1
    assert "PDP_RMa_Nlos.mat pdp{2} (index 1): expected finite" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "data/processed/sources/RMa_Los.npz").is_file()
    assert not (tmp_path / "data/processed/targets").exists()
    assert not (tmp_path / "reports/pdp_stats/RMa_Nlos.json").exists()
    assert not list((tmp_path / "data").rglob("*.tmp*"))
