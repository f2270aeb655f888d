"""Channel synthesis: exactness, normalisation, statistics, K-factor, determinism, reference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import PDP, PDPSet, read_mat
from chanest.channel.reference import exponential_pdp_set, reference_synthesis_numpy
from chanest.channel.response import dirichlet_gram, grid_split, tap_correlate, tap_response
from chanest.channel.sampler import ChannelSampler, db, nmse

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


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def direct_response(delays_s: torch.Tensor, gains: torch.Tensor, ofdm: OFDMConfig) -> torch.Tensor:
    """float64 brute-force sum_l a_l exp(-j 2 pi f_k tau_l), (B, n_sc) complex128."""
    f = torch.as_tensor(ofdm.subcarrier_freqs_hz())
    phase = -2.0 * math.pi * delays_s.to(torch.float64)[..., None] * f
    return (gains.to(torch.complex128)[..., None] * torch.exp(1j * phase)).sum(1)


def nmse_db_total(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.to(torch.complex128), b.to(torch.complex128)
    return float(db((a - b).abs().square().sum() / b.abs().square().sum()))


@pytest.fixture(scope="module")
def synthetic() -> PDPSet:
    return exponential_pdp_set(200, 20, (30e-9, 300e-9), np.random.default_rng(1))


@pytest.fixture(scope="module")
def inf_los() -> PDPSet:
    path = NYUSIM / "PDP_InF_Los.mat"
    return PDPSet.from_pdps("InF_Los", read_mat(path)).normalised()


# ---------------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("n", [624, 3072, 997, 1])
@pytest.mark.parametrize("spacing_hz", [30e3, 120e3])
def test_tap_response_is_exact(n: int, spacing_hz: float) -> None:
    torch.manual_seed(n)
    delays = torch.rand(16, 24, dtype=torch.float64) * 5e-6  # up to several us
    gains = torch.randn(16, 24, dtype=torch.complex128)
    f = torch.arange(n, dtype=torch.float64) * spacing_hz
    ref = (gains[..., None] * torch.exp(-2j * math.pi * delays[..., None] * f)).sum(1)
    assert nmse_db_total(tap_response(delays, gains.to(torch.complex64), spacing_hz, n), ref) < -100
    assert nmse_db_total(tap_response(delays, gains, spacing_hz, n), ref) < -200


def test_tap_correlate_and_gram_match_explicit_steering() -> None:
    torch.manual_seed(0)
    n, step, start = 512, 720e3, 240e3
    delays = torch.rand(8, 12, dtype=torch.float64) * 2e-6
    delays[:, -3:] = delays[:, :1]  # coincident taps (as padding makes them)
    f = start + torch.arange(n, dtype=torch.float64) * step
    v = torch.exp(-2j * math.pi * f[:, None] * delays[:, None, :])  # (B, n, L)
    y = torch.randn(8, n, dtype=torch.complex128)
    expect = (v.conj() * y[..., None]).sum(1)
    assert torch.allclose(tap_correlate(delays, y, step, start), expect, rtol=0, atol=1e-9)
    gram = v.conj().transpose(1, 2) @ v
    assert torch.allclose(dirichlet_gram(delays, step, n, start), gram, rtol=0, atol=1e-8)


def test_grid_split_covers_the_grid() -> None:
    for n in (1, 2, 26, 48, 64, 624, 997, 3072, 3300):
        coarse, fine = grid_split(n)
        assert coarse * fine >= n and (coarse - 1) * fine < n


@pytest.mark.parametrize("ofdm", [CPU, PAPER], ids=["cpu", "paper"])
def test_sampled_channel_equals_float64_direct_evaluation(ofdm: OFDMConfig, synthetic) -> None:
    batch = ChannelSampler(synthetic, ofdm).sample(64, 10.0, gen())
    assert batch.h.dtype == torch.complex64 and batch.h.shape == (64, ofdm.n_subcarriers)
    assert nmse_db_total(batch.h, direct_response(batch.delays_s, batch.gains, ofdm)) < -80


@pytest.fixture(scope="module")
def ragged() -> PDPSet:
    """PDPs with 1 to 30 taps (mostly few), so padding and the rare-tail-taps path are used."""
    rng = np.random.default_rng(5)
    pdps = []
    for n_taps in np.minimum(rng.geometric(0.2, size=300), 30):
        delays = np.concatenate([[0.0], np.sort(rng.uniform(0, 1e-6, n_taps - 1))])
        pdps.append(PDP(delays, np.exp(-delays / 200e-9)))
    return PDPSet.from_pdps("synthetic", pdps)


@pytest.mark.parametrize("normalisation", ["realisation", "pdp"])
def test_ragged_tap_counts_exact_and_normalised(ragged, normalisation: str) -> None:
    sampler = ChannelSampler(ragged, PAPER, normalisation=normalisation)
    assert sampler._head_taps < sampler.n_taps  # the split path is exercised
    batch = sampler.sample(96, 10.0, gen(8))
    assert nmse_db_total(batch.h, direct_response(batch.delays_s, batch.gains, PAPER)) < -80
    n_taps = torch.as_tensor(ragged.n_taps)[batch.pdp_index]
    padded = torch.arange(sampler.n_taps)[None] >= n_taps[:, None]
    assert torch.all(batch.gains[padded] == 0) and torch.all(batch.powers[padded] == 0)
    if normalisation == "realisation":
        energy = batch.h.abs().square().mean(1)
        assert torch.allclose(energy, torch.ones_like(energy), rtol=0, atol=1e-5)


def test_normalisation_without_precomputed_gram(ragged) -> None:
    sampler = ChannelSampler(ragged, CPU)
    sampler._gram = None  # as for a PDP set too large to precompute: built per batch
    batch = sampler.sample(128, 10.0, gen(9))
    energy = batch.h.abs().square().mean(1)
    assert torch.allclose(energy, torch.ones_like(energy), rtol=0, atol=1e-5)
    again = ChannelSampler(ragged, CPU).sample(128, 10.0, gen(9))
    assert torch.allclose(batch.h, again.h, atol=1e-5)


def test_real_pdps_paper_profile_exact(inf_los) -> None:
    batch = ChannelSampler(inf_los, PAPER).sample(128, 20.0, gen(3))
    assert nmse_db_total(batch.h, direct_response(batch.delays_s, batch.gains, PAPER)) < -80
    energy = batch.h.abs().square().mean(1)
    assert torch.allclose(energy, torch.ones_like(energy), atol=1e-5)


# ------------------------------------------------------------------------------ normalisation


@pytest.mark.parametrize("ofdm", [CPU, PAPER], ids=["cpu", "paper"])
def test_realisation_normalisation_is_exact(ofdm: OFDMConfig, synthetic) -> None:
    batch = ChannelSampler(synthetic, ofdm).sample(256, (0.0, 30.0), gen(1))
    energy = batch.h.abs().square().mean(1)
    assert torch.allclose(energy, torch.ones_like(energy), rtol=0, atol=1e-5)
    assert torch.allclose(batch.powers.sum(1), torch.ones(256), atol=1e-6)


def test_pdp_normalisation_holds_on_average(synthetic) -> None:
    batch = ChannelSampler(synthetic, CPU, normalisation="pdp").sample(4000, 10.0, gen(2))
    energy = batch.h.abs().square().mean(1).double()
    sigma = float(energy.std()) / math.sqrt(len(energy))
    assert abs(float(energy.mean()) - 1.0) < 5 * sigma
    # the gains' empirical second moments match the returned prior variances
    second = batch.gains.abs().square().mean(0).double()
    prior = batch.powers.mean(0).double()
    assert torch.allclose(second, prior, atol=6 * float(prior.max()) / math.sqrt(4000))


# -------------------------------------------------------------------------------- noise / LS


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 10.0, 30.0])
def test_ls_nmse_at_pilots_is_minus_snr(snr_db: float, synthetic) -> None:
    batch = ChannelSampler(synthetic, CPU).sample(3000, snr_db, gen(int(snr_db) + 50))
    h_p = batch.h[:, CPU.pilot_offset :: CPU.pilot_spacing]
    measured = float(db(nmse(batch.h_ls, h_p).mean()))
    assert abs(measured + snr_db) < 0.15
    expect = torch.full((3000,), 10 ** (-snr_db / 10), dtype=torch.float32)
    assert torch.allclose(batch.noise_var, expect)


def test_snr_forms(synthetic) -> None:
    sampler = ChannelSampler(synthetic, CPU)
    assert torch.all(sampler.sample(8, 7.5, gen()).snr_db == 7.5)
    ranged = sampler.sample(2000, (-5.0, 35.0), gen()).snr_db
    assert float(ranged.min()) >= -5.0 and float(ranged.max()) < 35.0
    assert abs(float(ranged.mean()) - 15.0) < 1.0
    listed = sampler.sample(8, [0.0, 1.0], gen()).snr_db
    assert torch.equal(listed, sampler.sample(8, (0.0, 1.0), gen()).snr_db)
    given = torch.linspace(-10, 40, 8)
    assert torch.equal(sampler.sample(8, given, gen()).snr_db, given)
    with pytest.raises(ValueError):
        sampler.sample(8, torch.zeros(3), gen())
    with pytest.raises(ValueError):
        sampler.sample(8, (10.0, 0.0), gen())


# --------------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("max_cp", [0.0, 0.2], ids=["no-offset", "offset"])
def test_frequency_correlation_matches_analytic(max_cp: float) -> None:
    ofdm = OFDMConfig(delay_offset_max_cp=max_cp)
    delays = np.array([0.0, 90e-9, 250e-9, 700e-9])
    powers = np.array([0.5, 0.25, 0.15, 0.1])
    pdps = PDPSet.from_pdps("synthetic", [PDP(delays, powers)])
    batch = ChannelSampler(pdps, ofdm, normalisation="pdp").sample(3000, 20.0, gen(7))
    h = batch.h.to(torch.complex128)
    df, big_t = ofdm.subcarrier_spacing_hz, ofdm.max_delay_offset_s
    for lag in (0, 1, 3, 10, 40, 150):
        per_sample = (h[:, lag:] * h[:, : h.shape[1] - lag].conj()).mean(1)  # E[H_{k+d} H_k^*]
        x = lag * df * big_t
        offset_cf = np.sinc(x) * np.exp(-1j * np.pi * x)
        analytic = np.sum(powers * np.exp(-2j * np.pi * lag * df * delays)) * offset_cf
        stderr = float(per_sample.std()) / math.sqrt(len(per_sample))
        assert abs(complex(per_sample.mean()) - analytic) < 5 * stderr + 1e-3, lag


def test_large_k_factor_gives_a_nearly_constant_first_tap() -> None:
    delays = np.array([0.0, 50e-9, 120e-9])
    powers = np.array([0.6, 0.3, 0.1])
    los = PDPSet.from_pdps("synthetic", [PDP(delays, powers, k_factor=100.0)])
    gains = ChannelSampler(los, CPU, normalisation="pdp").sample(2000, 10.0, gen(4)).gains
    mag = gains[:, 0].abs()
    assert float(mag.std() / mag.mean()) < 0.1
    phase = torch.angle(gains[:, 0])  # the specular phase is uniform
    assert abs(complex(torch.exp(1j * phase.double()).mean())) < 0.1
    rayleigh = PDPSet.from_pdps("synthetic", [PDP(delays, powers)])
    mag = ChannelSampler(rayleigh, CPU, normalisation="pdp").sample(2000, 10.0, gen(4)).gains
    ratio = float(mag[:, 0].abs().std() / mag[:, 0].abs().mean())
    assert 0.45 < ratio < 0.6  # Rayleigh: sqrt(4 / pi - 1) = 0.52


# -------------------------------------------------------------------------------- determinism


def test_same_seed_same_batch_different_seed_different(synthetic) -> None:
    sampler = ChannelSampler(synthetic, CPU)
    a, b = sampler.sample(32, (0.0, 20.0), gen(5)), sampler.sample(32, (0.0, 20.0), gen(5))
    for name in ("h", "h_ls", "snr_db", "noise_var", "pdp_index", "delays_s", "powers", "gains"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    c = sampler.sample(32, (0.0, 20.0), gen(6))
    assert not torch.equal(a.h, c.h) and not torch.equal(a.h_ls, c.h_ls)


def test_batch_does_not_depend_on_the_thread_count(synthetic) -> None:
    sampler = ChannelSampler(synthetic, CPU)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = sampler.sample(64, (0.0, 20.0), gen(12))
        torch.set_num_threads(2)
        two = sampler.sample(64, (0.0, 20.0), gen(12))
    finally:
        torch.set_num_threads(threads)
    assert torch.allclose(one.h_ls - one.h[:, ::2], two.h_ls - two.h[:, ::2], atol=1e-5)
    assert torch.allclose(one.h, two.h, atol=1e-5)


def test_given_index_is_used(synthetic) -> None:
    index = torch.tensor([3, 3, 0, 199])
    batch = ChannelSampler(synthetic, CPU).sample(4, 10.0, gen(), index=index)
    assert torch.equal(batch.pdp_index, index)
    shift = batch.delays_s - torch.as_tensor(synthetic.delays_s[index.numpy()])
    assert torch.allclose(shift, shift[:, :1].expand(4, 20))  # one common offset per sample
    assert float(shift.min()) >= 0 and float(shift.max()) < CPU.max_delay_offset_s


# ---------------------------------------------------------------------------------- reference


def test_reference_synthesis_has_the_same_statistics(synthetic) -> None:
    rng = np.random.default_rng(0)
    snr_db, n = 10.0, 400
    ref = [reference_synthesis_numpy(synthetic, CPU, snr_db, rng) for _ in range(n)]
    h = np.stack([r[0] for r in ref])
    h_ls = np.stack([r[1] for r in ref])
    assert h.shape == (n, CPU.n_subcarriers) and h_ls.shape == (n, CPU.n_pilots)
    assert np.allclose(np.mean(np.abs(h) ** 2, axis=1), 1.0)
    err = np.sum(np.abs(h_ls - h[:, CPU.pilot_indices]) ** 2, 1)
    ls_db = 10 * np.log10(np.mean(err / np.sum(np.abs(h[:, CPU.pilot_indices]) ** 2, 1)))
    assert abs(ls_db + snr_db) < 0.3
    # frequency correlation magnitude against the fast sampler's
    fast = ChannelSampler(synthetic, CPU).sample(n, snr_db, gen(9)).h.numpy()
    for lag in (1, 5, 20):
        r_ref = (h[:, lag:] * h[:, :-lag].conj()).mean(1)
        r_fast = (fast[:, lag:] * fast[:, :-lag].conj()).mean(1)
        tol = 5 * math.hypot(r_ref.std(), r_fast.std()) / math.sqrt(n) + 0.01
        assert abs(abs(r_ref.mean()) - abs(r_fast.mean())) < tol, lag


def test_metrics() -> None:
    h = torch.ones(2, 4, dtype=torch.complex64)
    est = h.clone()
    est[1] += 0.1
    assert torch.allclose(nmse(est, h), torch.tensor([0.0, 0.01]))
    assert db(0.01) == pytest.approx(-20.0)
    assert np.allclose(db(np.array([10.0])), 10.0)
