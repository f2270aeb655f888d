"""Baselines: LS + linear interpolation, statistical and genie LMMSE (orderings, exactness)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from chanest.estimators.baselines import (
    StatLMMSE,
    band_correlation,
    genie_lmmse,
    genie_nmse_analytic,
    ls_linear,
)
from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import PDPSet, read_mat
from chanest.channel.sampler import ChannelSampler, db, nmse
from chanest.channel.reference import exponential_pdp_set

NYUSIM = Path(__file__).parents[1] / "data/nyusim-28ghz"  # the committed research files
CPU = OFDMConfig()
PAPER = OFDMConfig(
    subcarrier_spacing_hz=120e3,
    n_subcarriers=3072,
    fft_size=4096,
    cp_s=590e-9,
    dmrs_symbol=0,
    pilot_spacing=6,
)
SNRS = (-10.0, 0.0, 10.0, 20.0, 30.0)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mean_db(est: torch.Tensor, h: torch.Tensor) -> float:
    return float(db(nmse(est, h).mean()))


@pytest.fixture(scope="module")
def synthetic() -> PDPSet:
    return exponential_pdp_set(300, 20, (30e-9, 300e-9), np.random.default_rng(11))


# --------------------------------------------------------------------------------- LS + linear


@pytest.mark.parametrize("offset", [0, 1])
def test_ls_linear_is_exact_on_flat_and_linear_channels(offset: int) -> None:
    ofdm = OFDMConfig(n_subcarriers=48, pilot_spacing=4, pilot_offset=offset)
    flat = torch.full((3, ofdm.n_pilots), 0.3 - 0.7j, dtype=torch.complex64)
    assert torch.allclose(ls_linear(flat, ofdm), torch.full((3, 48), 0.3 - 0.7j))
    k = torch.arange(48, dtype=torch.float64)
    line = (1.0 + 0.5j) + (0.02 - 0.01j) * k  # edges are extrapolated linearly
    est = ls_linear(line[ofdm.pilot_indices][None].to(torch.complex128), ofdm)
    assert torch.allclose(est[0], line, atol=1e-12)


# ------------------------------------------------------------------------------------- LMMSE


def test_band_correlation_is_normalised_with_offset(synthetic) -> None:
    r = band_correlation(synthetic, CPU)
    assert r.shape == (CPU.n_subcarriers,)
    assert abs(complex(r[0]) - 1.0) < 1e-12
    assert float(r.abs().max()) <= 1.0 + 1e-12


def test_stat_lmmse_matches_the_direct_formula(synthetic) -> None:
    est = StatLMMSE.from_pdps(synthetic, CPU)
    batch = ChannelSampler(synthetic, CPU).sample(4, (0.0, 30.0), gen(1))
    cov = est.covariance()
    p = torch.as_tensor(CPU.pilot_indices)
    for i in range(4):
        s = float(batch.noise_var[i])
        y = batch.h_ls[i].to(torch.complex128)
        w = cov[:, p] @ torch.linalg.solve(cov[p][:, p] + s * torch.eye(len(p)), y)
        got = est(batch.h_ls[i : i + 1], batch.noise_var[i : i + 1])[0].to(torch.complex128)
        assert float(db((got - w).abs().square().sum() / w.abs().square().sum())) < -50


def test_genie_matches_the_pilot_domain_formula() -> None:
    torch.manual_seed(0)
    ofdm = PAPER
    b, n_taps = 4, 60
    delays = torch.sort(torch.rand(b, n_taps, dtype=torch.float64) * 1e-6, dim=1).values
    powers = torch.exp(-delays / 100e-9)
    powers[:, 45:] = 0.0  # padded taps
    delays[:, 45:] = delays[:, :1]
    powers = powers / powers.sum(1, keepdim=True)
    s = torch.tensor([1e-4, 1e-3, 1e-1, 10.0], dtype=torch.float64)  # 40 .. -10 dB
    f_p = torch.as_tensor(ofdm.subcarrier_freqs_hz()[ofdm.pilot_indices])
    f = torch.as_tensor(ofdm.subcarrier_freqs_hz())
    v_p = torch.exp(-2j * math.pi * f_p[:, None] * delays[:, None, :])
    v = torch.exp(-2j * math.pi * f[:, None] * delays[:, None, :])
    y = torch.randn(b, ofdm.n_pilots, dtype=torch.complex128)
    got = genie_lmmse(y, delays, powers, s, ofdm)
    assert got.dtype == torch.complex128
    for i in range(b):
        pv = powers[i].to(torch.complex128)[:, None] * v_p[i].conj().T  # P V_p^H
        a = pv @ torch.linalg.solve(v_p[i] @ pv + s[i] * torch.eye(ofdm.n_pilots), y[i])
        expect = v[i] @ a
        rel = (got[i] - expect).abs().square().sum() / expect.abs().square().sum()
        assert float(db(rel)) < -100


def test_genie_nmse_matches_its_analytic_value(synthetic) -> None:
    sampler = ChannelSampler(synthetic, CPU, normalisation="pdp")
    batch = sampler.sample(2000, 10.0, gen(3))
    est = genie_lmmse(batch.h_ls, batch.delays_s, batch.powers, batch.noise_var, CPU)
    err = (est - batch.h).abs().square().sum(1).double()
    expect = genie_nmse_analytic(batch.delays_s, batch.powers, batch.noise_var, CPU)
    expect_err = expect * CPU.n_subcarriers * batch.powers.double().sum(1)
    assert abs(float(err.sum() / expect_err.sum()) - 1.0) < 0.05


@pytest.fixture(scope="module")
def ordering_results(synthetic) -> dict[float, tuple[float, float, float]]:
    """NMSE (dB) of LS+linear, stat LMMSE and genie at each SNR on one fixed test batch."""
    sampler = ChannelSampler(synthetic, CPU)
    stat = StatLMMSE.from_pdps(synthetic, CPU)
    batch = sampler.sample(2000, 0.0, gen(21))
    noise = batch.h_ls - batch.h[:, CPU.pilot_offset :: CPU.pilot_spacing]
    out = {}
    for snr in SNRS:
        s = torch.full((2000,), 10 ** (-snr / 10))
        y = batch.h[:, CPU.pilot_offset :: CPU.pilot_spacing] + noise * math.sqrt(10 ** (-snr / 10))
        out[snr] = (
            mean_db(ls_linear(y, CPU), batch.h),
            mean_db(stat(y, s), batch.h),
            mean_db(genie_lmmse(y, batch.delays_s, batch.powers, s, CPU), batch.h),
        )
    return out


@pytest.mark.parametrize("snr", SNRS)
def test_genie_beats_stat_beats_ls(snr: float, ordering_results) -> None:
    ls, stat, genie = ordering_results[snr]
    assert genie <= stat <= ls, (ls, stat, genie)


def test_lmmse_well_below_ls_at_low_snr(ordering_results) -> None:
    for snr in (-10.0, 0.0):
        ls, stat, genie = ordering_results[snr]
        assert stat < ls - 3.0 and genie < ls - 6.0, (snr, ls, stat, genie)


def test_stat_lmmse_handles_a_batch_of_noise_variances(synthetic) -> None:
    stat = StatLMMSE.from_pdps(synthetic, CPU)
    batch = ChannelSampler(synthetic, CPU).sample(16, (-5.0, 35.0), gen(8))
    together = stat(batch.h_ls, batch.noise_var)
    one_by_one = torch.cat([stat(batch.h_ls[i : i + 1], batch.noise_var[i]) for i in range(16)])
    assert torch.allclose(together, one_by_one, atol=1e-5)


# ----------------------------------------------------------------- real PDPs, reference numbers


def test_paper_profile_inf_los_matches_the_notes() -> None:
    """Notes: InF_Los at 21.7 dB, paper profile: LS+linear -23.1 dB, genie -42.3 dB."""
    path = NYUSIM / "PDP_InF_Los.mat"
    pdps = PDPSet.from_pdps("InF_Los", read_mat(path)).normalised()
    batch = ChannelSampler(pdps, PAPER).sample(1500, 21.7, gen(0))
    ls = mean_db(ls_linear(batch.h_ls, PAPER), batch.h)
    genie = mean_db(
        genie_lmmse(batch.h_ls, batch.delays_s, batch.powers, batch.noise_var, PAPER), batch.h
    )
    assert abs(ls + 23.1) < 0.4 and abs(genie + 42.3) < 0.4, (ls, genie)
