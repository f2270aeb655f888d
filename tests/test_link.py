"""The PUSCH link: chanest estimators inside Sionna's receiver, the BLER fit and its intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chanest.studies import link
from chanest.estimators.baselines import genie_lmmse, ls_linear
from chanest.studies.bler import TARGET_BLER, fit_logistic
from chanest.studies.link_report import clopper_pearson, crossings, points
from chanest.channel.ofdm import OFDMConfig
from chanest.channel.sampler import ChannelSampler
from conftest import exponential_pdps

pytest.importorskip("sionna.phy.nr")

OFDM = OFDMConfig(n_subcarriers=48, fft_size=64)  # 4 PRBs: small transport blocks, fast tests


@pytest.fixture(scope="module")
def setup():
    """A Link with the genie and LS+linear as chanest estimators, on exponential PDPs."""
    sampler = ChannelSampler(exponential_pdps(30, seed=2, scenario="InF_Los", ds_ns=40.0), OFDM)
    estimators = {
        "lmmse_genie": lambda b: genie_lmmse(b.h_ls, b.delays_s, b.powers, b.noise_var, OFDM),
        "ls": lambda b: ls_linear(b.h_ls, OFDM),
    }
    zero = {m: (lambda s: torch.zeros_like(s)) for m in estimators}
    lp = link.LinkParams(methods=("perfect", "ls", "lmmse_genie"), mcs_index=(7,), batch_size=8)
    return link.Link(OFDM, lp, 7, sampler, estimators, zero, (1, 2, 3, 7)), sampler


def received(lk, no: float, seed: int = 0):
    from sionna.phy import config

    config.seed = seed
    chan = lk.sampler.sample(8, 0.0, torch.Generator().manual_seed(seed))
    h_freq = chan.h[:, None, None, None, None, None, :].expand(8, 1, 1, 1, 1, 14, OFDM.n_subcarriers)
    x, bits = lk.tx(8)
    return chan, h_freq, lk.channel(x, h_freq, torch.tensor(no)), bits


def test_the_slot_is_the_one_chanest_synthesises(setup):
    lk, _ = setup
    assert lk.pc.dmrs_symbol_indices == [OFDM.dmrs_symbol] and lk.pc.num_subcarriers == OFDM.n_subcarriers
    dmrs = link.dmrs_symbols(lk.tx, OFDM)
    assert dmrs.shape == (OFDM.n_pilots,)
    assert torch.allclose(dmrs.abs().pow(2), torch.full_like(dmrs.real, 2.0))  # 3 dB above the data
    assert link.mcs_name(lk.pc) == "qpsk_r0.51"
    with pytest.raises(ValueError, match="ofdm.pilot_spacing = 3"):
        link.pusch_config(OFDMConfig(n_subcarriers=48, fft_size=64, pilot_spacing=3), 1, 7)
    with pytest.raises(ValueError, match="ofdm.dmrs_symbol = 3"):
        link.pusch_config(OFDMConfig(n_subcarriers=48, fft_size=64, dmrs_symbol=3), 1, 7)


@torch.inference_mode()
def test_the_genie_on_a_noiseless_link_is_sionnas_perfect_csi(setup):
    lk, _ = setup
    chan, h_freq, y, bits = received(lk, 1e-7)
    adapter = lk.adapters["lmmse_genie"]
    adapter.context = chan
    h_hat, err_var = adapter(y, torch.tensor(1e-7))
    assert h_hat.shape == h_freq.shape and err_var.shape == (8, 1, 1, 1, 1, 1, 1)
    rel = ((h_hat - h_freq).abs().pow(2).sum(-1) / h_freq.abs().pow(2).sum(-1)).max()
    assert rel < 1e-6, float(rel)  # -60 dB: the channel, up to the 70 dB noise
    b_genie, crc_genie = lk.receivers["lmmse_genie"](y, torch.tensor(1e-7))
    b_perfect, crc_perfect = lk.receivers["perfect"](y, torch.tensor(1e-7), h_freq)
    assert crc_genie.all() and crc_perfect.all()
    assert torch.equal(b_genie, b_perfect) and torch.equal(b_genie, bits)


@torch.inference_mode()
def test_ls_pilots_match_sionnas_ls_estimator(setup):
    """Sionna's PUSCHLSChannelEstimator averages each CDM pair of comb pilots (4n, 4n+2) before
    interpolating linearly; the adapter's LS pilots, put through that same rule, give its output
    to float round-off (with noise), so the pilots, their scaling and the subcarrier map agree."""
    from sionna.phy.nr import PUSCHLSChannelEstimator

    lk, _ = setup
    chan, h_freq, y, _ = received(lk, 0.05, seed=3)
    no = torch.tensor(0.05)
    sionna_ls = PUSCHLSChannelEstimator(lk.tx.resource_grid, 1, 0, 2, interpolation_type="lin")
    h_sionna, var_sionna = sionna_ls(y, no)
    captured = {}

    def capture(b):
        captured["batch"] = b
        return ls_linear(b.h_ls, OFDM)

    adapter = link.SionnaEstimator(capture, lambda s: torch.zeros_like(s), link.dmrs_symbols(lk.tx, OFDM),
                                   torch.as_tensor(OFDM.pilot_indices), OFDM.dmrs_symbol)
    adapter.context = chan
    h_chanest, _ = adapter(y, no)
    pilots = captured["batch"].h_ls  # (8, 24): subcarriers 0, 2, 4, ...
    assert torch.allclose(captured["batch"].noise_var, torch.full((8,), 0.025))  # no / |DMRS|^2
    pairs = (pilots[:, 0::2] + pilots[:, 1::2]) / 2  # one per 4-subcarrier CDM group
    expect = torch.empty(8, OFDM.n_subcarriers, dtype=torch.complex64)
    for n in range(pairs.shape[1]):
        expect[:, 4 * n: 4 * n + 3] = pairs[:, n, None]
        nxt = pairs[:, min(n + 1, pairs.shape[1] - 1)]
        expect[:, 4 * n + 3] = (pairs[:, n] + nxt) / 2
    got = h_sionna[:, 0, 0, 0, 0, 5]
    assert (got - expect).abs().max() < 1e-5
    assert torch.allclose(var_sionna, torch.full_like(var_sionna, 0.05 / 4))
    # chanest's LS + linear uses every pilot (no pair averaging): on a flat noiseless channel both
    # are the channel itself
    flat_y = lk.channel(lk.tx(8)[0], torch.ones_like(h_freq), torch.tensor(0.0))
    adapter.context = chan
    assert torch.allclose(adapter(flat_y, torch.tensor(1e-9))[0], torch.ones_like(h_freq), atol=1e-5)
    assert torch.allclose(sionna_ls(flat_y, torch.tensor(1e-9))[0], torch.ones_like(h_freq), atol=1e-5)
    # and with noise it differs from Sionna's by the pair averaging, nothing else
    assert not torch.allclose(h_chanest[:, 0, 0, 0, 0, 5], got, atol=1e-3)


def test_batches_are_identical_for_every_method_and_differ_between_points(setup):
    lk, _ = setup
    a, b = lk.batch(10, 0), lk.batch(10, 0)
    assert torch.equal(a[2], b[2]) and torch.equal(a[4], b[4]) and torch.equal(a[0].h, b[0].h)
    c = lk.batch(11, 0)
    assert not torch.equal(a[0].h, c[0].h)


def test_the_logistic_fit_recovers_a_known_crossing_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    snr = np.repeat(np.arange(2.0, 8.5, 0.5), 200)
    true_s10, slope = 5.0, -1.6  # logit(p) = logit(0.1) + slope (s - s10)
    logit = math.log(TARGET_BLER / (1 - TARGET_BLER)) + slope * (snr - true_s10)
    err = rng.random(len(snr)) < 1 / (1 + np.exp(-logit))
    from chanest.evaluation import stats
    w = np.vstack([np.ones((1, len(snr))), stats.cluster_weights(np.arange(len(snr)), 300, rng)])
    s = fit_logistic(snr, err, w)
    lo, hi = stats.interval(s[1:])
    assert abs(s[0] - true_s10) < 0.1 and lo < true_s10 < hi and hi - lo < 0.4


def test_crossings_pair_every_method_with_perfect_csi():
    rng = np.random.default_rng(1)

    def curve(method, s10):
        snr = np.repeat(np.arange(3.0, 9.0, 0.5), 150)
        logit = math.log(1 / 9) - 1.5 * (snr - s10)
        return {"method": method, "mcs": "qpsk_r0.51", "snr_db": snr, "pdp_index": rng.integers(0, 100, len(snr)),
                "error": rng.random(len(snr)) < 1 / (1 + np.exp(-logit))}

    records = [curve("perfect", 5.0), curve("ls", 6.5)]
    out = crossings("InF_Los", records, n_boot=200, seed=3)
    ls = out["ls"]["qpsk_r0.51"]
    assert abs(out["perfect"]["qpsk_r0.51"]["snr_at_bler_10pct_db"] - 5.0) < 0.2
    assert abs(ls["loss_vs_perfect_db"] - 1.5) < 0.3 and ls["loss_ci_db"][0] > 1.0
    lo, hi = ls["ci_db"]
    assert lo <= ls["snr_at_bler_10pct_db"] <= hi and hi - lo < 1.0
    rows = points("InF_Los", records)
    assert set(rows.columns) == {"scenario", "method", "mcs", "snr_db", "bler", "ci_low", "ci_high", "n_blocks",
                                 "n_errors"}
    assert (rows.ci_low <= rows.bler).all() and (rows.bler <= rows.ci_high).all()
    assert clopper_pearson(0, 100)[1] == pytest.approx(0.0362, abs=1e-3)  # the rule of three, exactly
