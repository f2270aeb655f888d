"""Preprocessing: normalisation, CP truncation, de-duplication, leakage-free reproducible splits."""

from __future__ import annotations

import numpy as np
import pytest

from chanest.channel.pdp import PDP, read_mat
from chanest.channel.preprocess import SplitConfig, load_processed, normalise, preprocess, save_processed, stats


def random_pdps(n: int, seed: int) -> list[PDP]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        taps = int(rng.integers(2, 12))  # one-tap PDPs would all be duplicates
        delays = 5e-9 + np.sort(rng.uniform(0, 3e-6, taps))
        out.append(PDP(delays, rng.uniform(1e-9, 1e-6, taps)))
    return out


def test_normalise_shifts_truncates_and_scales():
    pdp = PDP(np.array([10e-9, 20e-9, 1e-6, 3e-6]), np.array([4.0, 2.0, 1.0, 1.0]))
    out, dropped = normalise(pdp, cp_s=2.34e-6)
    assert dropped == 1
    np.testing.assert_allclose(out.delays_s, [0.0, 10e-9, 0.99e-6])
    np.testing.assert_allclose(out.powers, [4 / 7, 2 / 7, 1 / 7])


def test_splits_are_disjoint_complete_reproducible_and_follow_the_fractions():
    pdps = random_pdps(2000, seed=3)
    cfg = SplitConfig(0.7, 0.2, 0.1)
    a = preprocess("UMa_Nlos", pdps, 2.34e-6, cfg, seed=11)
    b = preprocess("UMa_Nlos", pdps, 2.34e-6, cfg, seed=11)
    c = preprocess("UMa_Nlos", pdps, 2.34e-6, cfg, seed=12)
    np.testing.assert_array_equal(a.split, b.split)
    assert (a.split != c.split).mean() > 0.3  # another seed, another split
    assert set(np.unique(a.split)) == {0, 1, 2}
    n = len(a.split)
    # binomial noise: 4 standard deviations of a fraction over n PDPs
    for i, f in enumerate((0.7, 0.2, 0.1)):
        assert abs((a.split == i).mean() - f) < 4 * np.sqrt(f * (1 - f) / n)


def test_duplicates_are_dropped_and_counted_and_taps_beyond_cp_counted():
    pdps = random_pdps(50, seed=5)
    dup = PDP(pdps[3].delays_s + 1e-9, pdps[3].powers * 7.0)  # same PDP after normalisation
    out = preprocess("InF_Los", pdps + [dup, pdps[10]], 2.34e-6, SplitConfig(), seed=1)
    assert len(out.pdps) == 50 and out.n_duplicates == 2 and out.n_raw == 52
    expected_dropped = sum(normalise(p, 2.34e-6)[1] for p in pdps) + normalise(dup, 2.34e-6)[1] \
        + normalise(pdps[10], 2.34e-6)[1]
    assert out.n_taps_beyond_cp == expected_dropped > 0
    np.testing.assert_allclose(out.pdps.powers.sum(axis=1), 1.0)


def test_same_pdp_in_two_scenarios_lands_in_the_same_split(nyusim_dir):
    """UMi_Los repeats UMa_Los: a test PDP of one is never a training PDP of the other."""
    cfg = SplitConfig()
    uma = preprocess("UMa_Los", read_mat(nyusim_dir / "PDP_UMa_Los.mat"), 590e-9, cfg, seed=4)
    umi = preprocess("UMi_Los", read_mat(nyusim_dir / "PDP_UMi_Los.mat"), 590e-9, cfg, seed=4)
    np.testing.assert_array_equal(uma.split, umi.split)
    np.testing.assert_array_equal(uma.pdps.delays_s, umi.pdps.delays_s)


def test_processed_file_round_trip_and_stats(tmp_path, nyusim_dir):
    p = preprocess("RMa_Los", read_mat(nyusim_dir / "PDP_RMa_Los.mat"), 590e-9, SplitConfig(), seed=2)
    save_processed(tmp_path / "RMa_Los.npz", p)
    every = load_processed(tmp_path, "RMa_Los")
    train, val, test = (load_processed(tmp_path, "RMa_Los", s) for s in ("train", "val", "test"))
    assert len(train) + len(val) + len(test) == len(every) == len(p.pdps)
    np.testing.assert_array_equal(every.delays_s, p.pdps.delays_s)
    s = stats(p)
    assert s["taps_max"] <= 2 and s["ds_ns_p90"] < 2.0  # RMa at 28 GHz: nearly flat channels
    assert s["n_train"] + s["n_val"] + s["n_test"] == s["n"]
    with pytest.raises(FileNotFoundError, match="InF_Los.npz"):
        load_processed(tmp_path, "InF_Los")
