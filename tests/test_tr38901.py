"""Tests of chanest.channel.tr38901: PDPs drawn from Sionna's TR 38.901 models against Table 7.5-6.

Generation is fast (about 0.15 s per 1,000 drops on 2 CPU cores), so each scenario uses 2,000
drops: the statistical tolerances below shrink with sqrt(n).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sionna.phy
import torch
from sionna.phy.channel.tr38901 import models

from chanest.channel import tr38901
from chanest.channel.pdp import SCENARIOS, PDPError

N_DROPS = 2000
SEED = 1234
CARRIERS_HZ = (3.5e9, 28e9)

# Allowed systematic bias of the median RMS delay spread of the PDPs against the LSP median
# 10**mu_lgDS, in log10 units. The PDP delay spread is the cluster-based one (after the LOS delay
# scaling, with the LOS specular power on tap 0), not the LSP DS itself. Measured with 20,000
# drops per scenario (seed 123), median PDP DS / 10**mu_lgDS at 3.5 GHz | 28 GHz:
#   LOS:  InF 1.052|1.052  InH 1.032|1.032  RMa 0.959|0.959  UMa 1.003|1.029  UMi 0.995|1.013
#   NLOS: InF 0.953|0.953  InH 0.958|0.957  RMa 0.908|0.908  UMa 0.955|0.967  UMi 0.955|0.969
# (NLOS lands ~5 % low: finite cluster counts and the -25 dB cluster pruning; RMa NLOS, 10
# clusters with r_tau = 1.7, is lowest). The largest |log10 ratio| is 0.042 (RMa NLOS).
DS_BIAS_LOG10 = 0.05
# Plus Z standard errors of the sample median of log10 DS (1.2533 s / sqrt(n), s the sample std
# of log10 DS; measured s: 0.16 InH NLOS to 0.62 UMa LOS). At n = 2,000 the total tolerance is
# a factor 1.16 (InF LOS) to 1.27 (UMa LOS) either way. A wrong scenario fails: e.g. UMa vs RMa
# medians differ by 2.3x (LOS, 74 vs 32 ns) and 7x (NLOS, 267 vs 37 ns), UMi LOS vs NLOS 2.4x,
# InH LOS vs NLOS 2x; so does a wrong carrier for UMi LOS (40 ns at 3.5 GHz, 29 ns at 28 GHz)
# and a wrong unit (1e9). LOS/NLOS pairs with close medians (RMa 32/37 ns, InF 53/55 ns) are
# told apart by the K-factor and cluster-count tests instead.
Z = 3.0


@pytest.fixture(scope="module")
def drops():
    """(scenario, carrier_hz) -> N_DROPS PDPs, generated once per module."""
    cache: dict = {}

    def get(scenario: str, carrier_hz: float = 3.5e9):
        key = (scenario, carrier_hz)
        if key not in cache:
            cache[key] = tr38901.generate_pdps(scenario, N_DROPS, carrier_hz, seed=SEED)
        return cache[key]

    return get


def _is_los(scenario: str) -> bool:
    return scenario.endswith("_Los")


@pytest.mark.parametrize("carrier_hz", CARRIERS_HZ)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_median_delay_spread_matches_table(drops, scenario, carrier_hz):
    pdps = drops(scenario, carrier_hz)
    lg_ds = np.log10([p.rms_delay_spread_s() for p in pdps])
    table = tr38901.table_7_5_6(scenario, carrier_hz)
    se = 1.2533 * lg_ds.std(ddof=1) / math.sqrt(len(lg_ds))
    tol = DS_BIAS_LOG10 + Z * se
    err = np.median(lg_ds) - table["mu_lgDS"]
    assert abs(err) <= tol, (
        f"{scenario} @ {carrier_hz / 1e9:g} GHz: median DS {10 ** np.median(lg_ds) * 1e9:.1f} ns, "
        f"table {table['ds_median_s'] * 1e9:.1f} ns (log10 error {err:+.3f}, tolerance {tol:.3f})"
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_k_factor_matches_table(drops, scenario):
    k = np.array([p.k_factor for p in drops(scenario)])
    table = tr38901.table_7_5_6(scenario, 3.5e9)
    if not _is_los(scenario):
        assert table["mu_K_dB"] is None
        assert np.all(k == 0.0)
        return
    k_db = 10 * np.log10(k)
    mu, sigma, n = table["mu_K_dB"], table["sigma_K_dB"], len(k_db)
    # K_dB ~ N(mu_K, sigma_K): 4 standard errors of the sample mean (sigma/sqrt(n): 0.08 dB for
    # UMa, 0.18 dB for InF at n = 2,000) and of the sample std (~sigma/sqrt(2(n-1))).
    assert abs(k_db.mean() - mu) <= 4 * sigma / math.sqrt(n), (k_db.mean(), mu)
    assert abs(k_db.std(ddof=1) - sigma) <= 4 * sigma / math.sqrt(2 * (n - 1)), (
        k_db.std(ddof=1),
        sigma,
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pdp_structure(drops, scenario):
    pdps = drops(scenario)
    for p in pdps:
        assert p.delays_s[0] == 0.0 and np.all(np.diff(p.delays_s) >= 0)
        assert np.all(p.powers > 0)
        # powers and K carry 6 significant digits (tr38901.SIGNIFICANT_DIGITS): sums to 1 within that
        assert p.powers.sum() == pytest.approx(1.0, abs=1e-5)
        # tap 0 holds the specular part K/(K+1) of the total plus its own diffuse power
        assert p.powers[0] >= p.k_factor / (p.k_factor + 1) * (1 - 2e-6)
    # Cluster count of Table 7.5-6 (Sionna's JSON): every cluster is kept in some drop (only
    # clusters 25 dB below the strongest are dropped), never more. LOS and NLOS differ (e.g. UMa
    # 12 vs 20, UMi 12 vs 19, RMa 11 vs 10, InH 15 vs 19), so this also checks the condition.
    family, los = tr38901.SIONNA_SCENARIO[scenario]
    name = f"{family}_{'LoS' if los else 'NLoS'}.json"
    n_clusters = models.load_json(models.parameter_file(name, tr38901.SPEC_VERSION))[
        "numClusters"
    ]
    assert max(p.n_taps for p in pdps) == n_clusters


@pytest.mark.parametrize("carrier_hz", CARRIERS_HZ)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_table_matches_sionna_scenario(scenario, carrier_hz):
    """table_7_5_6 (JSON + InF formula + carrier clipping) equals the log-normal parameters that
    Sionna's scenario object computes for the same link."""
    family, los = tr38901.SIONNA_SCENARIO[scenario]
    sc = tr38901._new_scenario(family, carrier_hz, "dh")
    sc.set_topology(*tr38901._topology(family, 1, "dh"), los=los)
    mean, std = sc.lsp_log_mean[0, 0, 0], sc.lsp_log_std[0, 0, 0]  # [DS, ASD, ASA, SF, K, ...]
    table = tr38901.table_7_5_6(scenario, carrier_hz)
    assert table["mu_lgDS"] == pytest.approx(float(mean[0]), abs=1e-5)
    assert table["sigma_lgDS"] == pytest.approx(float(std[0]), abs=1e-5)
    if los:
        assert table["mu_K_dB"] == pytest.approx(10 * float(mean[4]), abs=1e-4)
        assert table["sigma_K_dB"] == pytest.approx(10 * float(std[4]), abs=1e-4)


def test_table_values():
    # Hand-computed from TR 38.901 V19.2 Table 7.5-6 at 3.5 GHz (UMa clips fc to 6 GHz).
    assert tr38901.table_7_5_6("UMa_Nlos", 3.5e9)["mu_lgDS"] == pytest.approx(
        -6.47 - 0.134 * math.log10(6.0)
    )
    assert tr38901.table_7_5_6("UMi_Los", 3.5e9)["ds_median_s"] == pytest.approx(40.0e-9, rel=1e-3)
    inf = tr38901.table_7_5_6("InF_Los", 3.5e9, "dh")  # hall 120 x 60 x 10 m: V/S = 4 m
    assert inf["mu_lgDS"] == pytest.approx(math.log10(26 * 4 + 14) - 9.35)
    assert (inf["mu_K_dB"], inf["sigma_K_dB"]) == (7.0, 8.0)


def test_same_seed_same_pdps_other_seed_differs():
    a = tr38901.generate_pdps("UMi_Los", 50, 3.5e9, seed=7, batch_size=32)
    b = tr38901.generate_pdps("UMi_Los", 50, 3.5e9, seed=7, batch_size=32)
    c = tr38901.generate_pdps("UMi_Los", 50, 3.5e9, seed=8, batch_size=32)
    assert len(a) == len(b) == len(c) == 50
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.delays_s, q.delays_s)
        np.testing.assert_array_equal(p.powers, q.powers)
        assert p.k_factor == q.k_factor
    assert all(p.k_factor != q.k_factor for p, q in zip(a, c))


def test_global_rng_state_restored():
    cfg = sionna.phy.config
    seed_before = cfg.seed
    sionna_before = cfg.torch_rng("cpu").get_state()
    torch_before = torch.get_rng_state()
    tr38901.generate_pdps("RMa_Nlos", 10, 3.5e9, seed=3)
    assert cfg.seed == seed_before
    assert torch.equal(cfg.torch_rng("cpu").get_state(), sionna_before)
    assert torch.equal(torch.get_rng_state(), torch_before)


def test_unknown_scenario_raises():
    with pytest.raises(PDPError, match="unknown TR 38.901 scenario"):
        tr38901.generate_pdps("UMa_LOS", 10, 3.5e9, seed=0)
    with pytest.raises(PDPError, match="unknown TR 38.901 scenario"):
        tr38901.table_7_5_6("Foo_Los", 3.5e9)
    with pytest.raises(PDPError, match="sub-scenario"):
        tr38901.generate_pdps("InF_Los", 10, 3.5e9, seed=0, inf_subscenario="hh")
