"""Golden values: the data are the same on every machine (x86-64, the pinned dependencies).

Users compare metrics across commits made on different machines, so the PDPs, the split membership
of every PDP and the fixed test sets must not depend on the CPU. These values were computed once
and committed; a machine whose float round-off leaks into the data (as Sionna's float32 did: PDP
delays moved by ~1e-5 ns, which re-drew the split of most PDPs) fails here.

- PDPs: exact (sha256 of the bytes), since they are rounded to a documented precision
  (:data:`chanest.channel.tr38901.DELAY_STEP_NS`, 6 significant digits) far above float64 round-off.
- Split membership: exact (sha256), and the committed ``reports/pdp_stats/<Scenario>.json`` counts are
  re-derived from ``params.yaml``.
- Test sets and baselines: float32 synthesis may differ by an ulp between CPUs, so to 1e-5
  (values) and 1e-3 dB (NMSE), the project's reproducibility bar.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from chanest import config
from chanest.channel import tr38901
from chanest.estimators.baselines import genie_lmmse, ls_linear
from chanest.evaluation.evaluate import test_set as fixed_test_set
from chanest.channel.ofdm import OFDMConfig
from chanest.utils.params import load_params
from chanest.channel.pdp import PDPSet
from chanest.channel.preprocess import SplitConfig, preprocess
from chanest.channel.sampler import ChannelSampler, db, nmse
from conftest import REPO

SEED, N_DROPS = 2026, 64

GOLDEN = {
    "UMa_Nlos": {"pdps": "19c529b5b0e3e0c9d882a3eecf5f7067", "split": "1f0e564e4f0e6bf5b0ccecfd1028f709",
                 "counts": [49, 8, 7], "first_delays_ns": [0.0, 4.24, 6.294, 18.701]},
    "InF_Los": {"pdps": "c779499321fef0c8d0d2a55b7a8caf00", "split": "da6220f1d865a182d8f532c097ee149b",
                "counts": [56, 5, 3], "first_delays_ns": [0.0, 35.427, 60.443, 65.157]},
}
# UMa_Nlos test split, CPU-profile numerology, SNR 0 and 20 dB, 100 realisations each, eval seed 7
GOLDEN_TEST_SET = {  # the UMa_Nlos test set of eval seed 7, seeded by the scenario's name
    "h": [-0.443225 + 0.825550j, -0.424599 + 0.829551j, -0.406281 + 0.832817j],  # sample 0, subcarriers 0-2
    "h_ls": [-0.220857 - 0.239789j, -0.630499 - 0.638443j, -1.360590 - 0.823986j],  # sample 1, pilots 0-2
    "nmse_db": {"ls": [-1.2735, -21.1009], "lmmse_genie": [-14.0842, -33.6826]},
}


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:32]


@pytest.fixture(scope="module")
def generated():
    out = {}
    for scenario in GOLDEN:
        pdps = tr38901.generate_pdps(scenario, N_DROPS, 3.5e9, SEED)
        out[scenario] = (pdps, preprocess(scenario, pdps, OFDMConfig().cp_s, SplitConfig(), SEED))
    return out


@pytest.mark.parametrize("scenario", list(GOLDEN))
def test_generated_pdps_are_bit_identical_to_the_golden_ones(generated, scenario):
    pdps, _ = generated[scenario]
    s = PDPSet.from_pdps(scenario, pdps)
    assert np.round(pdps[0].delays_s[:4] * 1e9, 3).tolist() == GOLDEN[scenario]["first_delays_ns"]
    assert digest(s.delays_s, s.powers, s.k_factor, s.n_taps) == GOLDEN[scenario]["pdps"]


@pytest.mark.parametrize("scenario", list(GOLDEN))
def test_split_membership_is_the_golden_one(generated, scenario):
    _, processed = generated[scenario]
    assert np.bincount(processed.split, minlength=3).tolist() == GOLDEN[scenario]["counts"]
    assert digest(processed.split, processed.source_index) == GOLDEN[scenario]["split"]


def test_test_set_and_baselines_match_the_golden_values(generated):
    pdps, processed = generated["UMa_Nlos"]
    ofdm = OFDMConfig()  # the CPU profile's numerology
    test = processed.pdps.subset(np.flatnonzero(processed.split == 2))
    batch = fixed_test_set(ChannelSampler(test, ofdm), (0.0, 20.0), 100, eval_seed=7)
    assert batch.h[0, :3].tolist() == pytest.approx(GOLDEN_TEST_SET["h"], abs=1e-5)
    assert batch.h_ls[1, :3].tolist() == pytest.approx(GOLDEN_TEST_SET["h_ls"], abs=1e-5)
    est = {"ls": ls_linear(batch.h_ls, ofdm),
           "lmmse_genie": genie_lmmse(batch.h_ls, batch.delays_s, batch.powers, batch.noise_var, ofdm)}
    for name, h in est.items():
        e = nmse(h, batch.h)
        got = [float(db(e[batch.snr_db == s].mean())) for s in (0.0, 20.0)]
        assert got == pytest.approx(GOLDEN_TEST_SET["nmse_db"][name], abs=1e-3), name


def test_committed_split_counts_follow_from_params():
    """`reports/pdp_stats/<Scenario>.json` as committed is what these params give on this machine."""
    params = load_params(REPO / "params.yaml")
    p = config.PDPParams(**params["pdp"])
    if p.source != "tr38901":
        pytest.skip("params.yaml reads PDP files (pdp.source: mat_dir)")
    split = SplitConfig(**params["preprocess"]["split"])
    for scenario, site in config.sites(params).items():
        pdps = site.load(config.seed(params))  # Sionna scenarios drawn here; files read
        got = preprocess(scenario, pdps, config.ofdm(params).cp_s, split, config.seed(params))
        counts = np.bincount(got.split, minlength=3).tolist()
        committed = json.loads((REPO / "reports/pdp_stats" / f"{scenario}.json").read_text())
        want = [committed[f"n_{s}"] for s in ("train", "val", "test")]
        assert counts == want, scenario


def test_committed_baseline_rows_follow_from_params():
    """The committed `reports/nmse_vs_snr.csv` rows of LS and both LMMSEs, recomputed from
    params.yaml alone (PDPs, split, test set, estimators) for one source and one target: equal to
    0.001 dB, the bar for any machine."""
    import pandas as pd

    from chanest.estimators.baselines import StatLMMSE

    params = load_params(REPO / "params.yaml")
    p = config.PDPParams(**params["pdp"])
    if p.source != "tr38901":
        pytest.skip("params.yaml reads PDP files (pdp.source: mat_dir)")
    ofdm, ev, seed = config.ofdm(params), config.eval_params(params), config.seed(params)
    if config.normalisation(params) != "realisation":
        pytest.skip("checked for the default normalisation")
    committed = pd.read_csv(REPO / "reports/nmse_vs_snr.csv")
    split = SplitConfig(**params["preprocess"]["split"])
    for scenario in ("UMa_Los", "RMa_Nlos"):
        pdps = config.sites(params, [scenario])[scenario].load(seed)
        got = preprocess(scenario, pdps, ofdm.cp_s, split, seed)
        batch = fixed_test_set(ChannelSampler(got.pdps.subset(np.flatnonzero(got.split == 2)), ofdm),
                               ev.snr_db, ev.n_samples, ev.seed)
        stat = StatLMMSE.from_pdps(got.pdps.subset(np.flatnonzero(got.split == 0)), ofdm)
        est = {"ls": ls_linear(batch.h_ls, ofdm), "lmmse_stat": stat(batch.h_ls, batch.noise_var),
               "lmmse_genie": genie_lmmse(batch.h_ls, batch.delays_s, batch.powers, batch.noise_var, ofdm)}
        for name, h in est.items():
            e = nmse(h, batch.h)
            rows = committed[(committed.scenario == scenario) & (committed.method == name)]
            for s, want in zip(rows.snr_db, rows.nmse_db):
                assert float(db(e[batch.snr_db == s].mean())) == pytest.approx(want, abs=1e-3), (scenario, name, s)
