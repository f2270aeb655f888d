"""NOMP, the training-free off-grid baseline: delays off the grid, the stopping rule, its quality
at the research numerology, and its params."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import PDPSet, read_mat
from chanest.channel.preprocess import normalise
from chanest.channel.response import tap_response
from chanest.channel.sampler import ChannelSampler, db, nmse
from chanest.estimators.baselines import genie_lmmse, ls_linear
from chanest.estimators.nomp import NOMP, NOMPConfig, nomp_config
from chanest.utils.params import ParamsError

NYUSIM = Path(__file__).parents[1] / "data/nyusim-28ghz"
CPU = OFDMConfig()
PAPER = OFDMConfig(subcarrier_spacing_hz=120e3, n_subcarriers=3072, fft_size=4096, cp_s=590e-9,
                   dmrs_symbol=0, pilot_spacing=6)


def test_two_off_grid_taps_are_found_where_they_are() -> None:
    """Two taps 3.3 resolution cells apart, neither on the detection grid, at 30 dB: NOMP finds
    exactly two, each within 2% of a cell of its delay, and its error is within 2.5 dB of the
    genie's (which knows the delays)."""
    g = torch.Generator().manual_seed(0)
    b = 200
    cell = 1.0 / (CPU.n_pilots * CPU.pilot_spacing * CPU.subcarrier_spacing_hz)
    delays = torch.tensor([0.37 * cell, 3.67 * cell], dtype=torch.float64).expand(b, 2).contiguous()
    gains = torch.complex(torch.randn(b, 2, generator=g), torch.randn(b, 2, generator=g)) / 2
    h = tap_response(delays, gains.to(torch.complex128), CPU.subcarrier_spacing_hz, CPU.n_subcarriers)
    scale = h.abs().pow(2).mean(-1, keepdim=True).sqrt()
    h, gains = h / scale, gains / scale
    s = torch.full((b,), 1e-3, dtype=torch.float64)
    noise = torch.complex(torch.randn(b, CPU.n_pilots, generator=g, dtype=torch.float64),
                          torch.randn(b, CPU.n_pilots, generator=g, dtype=torch.float64))
    h_ls = h[:, torch.as_tensor(CPU.pilot_indices)] + noise * math.sqrt(1e-3 / 2)

    nomp = NOMP(CPU, NOMPConfig())
    found, g_hat = nomp.fit(h_ls, s)
    n_found = (g_hat != 0).sum(-1)
    assert (n_found == 2).float().mean() > 0.95
    both = n_found == 2
    est = found[both].sort(-1).values  # exactly two columns: the most any sample found
    assert ((est - delays[both]).abs() / cell).max() < 0.02
    err_nomp = float(db(nmse(nomp(h_ls, s), h).mean()))
    powers = (gains.abs() ** 2).to(torch.float64)
    err_genie = float(db(nmse(genie_lmmse(h_ls, delays, powers, s, CPU), h).mean()))
    assert err_genie - 0.2 < err_nomp < err_genie + 2.5


def _two_taps_a_cell_apart() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """300 channels of two taps 1.05 resolution cells apart at 10 dB (the RMa_Los case): the
    channel (B, n_sc), its noisy pilots (B, N) and the noise variance (B,)."""
    g = torch.Generator().manual_seed(4)
    b = 300
    cell = 1.0 / (CPU.n_pilots * CPU.pilot_spacing * CPU.subcarrier_spacing_hz)
    delays = torch.tensor([2.2 * cell, 3.25 * cell], dtype=torch.float64).expand(b, 2).contiguous()
    gains = torch.complex(torch.randn(b, 2, generator=g), torch.randn(b, 2, generator=g)).to(torch.complex128) / 2
    h = tap_response(delays, gains, CPU.subcarrier_spacing_hz, CPU.n_subcarriers)
    h = h / h.abs().pow(2).mean(-1, keepdim=True).sqrt()
    s = torch.full((b,), 0.1, dtype=torch.float64)
    noise = torch.complex(torch.randn(b, CPU.n_pilots, generator=g, dtype=torch.float64),
                          torch.randn(b, CPU.n_pilots, generator=g, dtype=torch.float64))
    h_ls = h[:, torch.as_tensor(CPU.pilot_indices)] + noise * math.sqrt(0.1 / 2)
    return h, h_ls, s


def test_taps_a_cell_apart_need_more_cyclic_passes_and_later_ones_can_take_fewer() -> None:
    """Two taps 1.05 resolution cells apart at 10 dB (the RMa_Los case): 10 cyclic passes place
    them closer to their delays than NOMP's 3 and lower the error; ``later_rounds`` changes
    nothing before its first capped detection, and with the cap at the first detection it is
    the uncapped run with that many passes."""
    h, h_ls, s = _two_taps_a_cell_apart()
    err = {r: float(db(nmse(NOMP(CPU, NOMPConfig(cyclic_rounds=r))(h_ls, s), h).mean())) for r in (3, 10)}
    assert err[10] < err[3] - 0.2, err
    ten = NOMP(CPU, NOMPConfig(cyclic_rounds=10))
    assert torch.equal(NOMP(CPU, NOMPConfig(cyclic_rounds=10), later_rounds=(4, 3))(h_ls, s), ten(h_ls, s))
    assert torch.equal(NOMP(CPU, NOMPConfig(cyclic_rounds=10), later_rounds=(0, 3))(h_ls, s),
                       NOMP(CPU, NOMPConfig(cyclic_rounds=3))(h_ls, s))


def test_noise_alone_rarely_passes_the_stopping_rule() -> None:
    """Pilots of noise only: the first detection passes the threshold in at most ``p_fa`` of the
    samples (fewer, since the search stays inside the delay window)."""
    g = torch.Generator().manual_seed(1)
    b = 2000
    y = torch.complex(torch.randn(b, CPU.n_pilots, generator=g), torch.randn(b, CPU.n_pilots, generator=g))
    y = y * math.sqrt(0.5)  # unit noise variance
    for p_fa in (0.05, 0.5):
        _, gains = NOMP(CPU, NOMPConfig(p_fa=p_fa, max_taps=2)).fit(y, torch.ones(b))
        rate = float((gains != 0).any(-1).float().mean())
        assert rate <= p_fa * 1.1
    assert rate > 0.02  # the rule is not vacuous: a loose p_fa lets noise through


def test_nomp_at_the_research_point_is_near_the_genie() -> None:
    """InF_Los (the research's NYUSIM file) at 21.7 dB on the research numerology: NOMP within
    2.5 dB of the genie LMMSE, about 16 dB ahead of LS + linear (golden: -39.8 dB on these 150)."""
    pdps = [normalise(p, PAPER.cp_s)[0] for p in read_mat(NYUSIM / "PDP_InF_Los.mat")]
    sampler = ChannelSampler(PDPSet.from_pdps("InF_Los", pdps).normalised(), PAPER)
    batch = sampler.sample(150, 21.7, torch.Generator().manual_seed(3))
    mean_db = lambda est: float(db(nmse(est, batch.h).mean()))  # noqa: E731
    genie = mean_db(genie_lmmse(batch.h_ls, batch.delays_s, batch.powers, batch.noise_var, PAPER))
    ours = mean_db(NOMP(PAPER)(batch.h_ls, batch.noise_var))
    assert genie < ours < genie + 2.5
    assert ours < mean_db(ls_linear(batch.h_ls, PAPER)) - 14.0


def test_nomp_params_are_checked() -> None:
    assert nomp_config({"nomp": {"oversample": 8}}) == NOMPConfig(oversample=8)
    with pytest.raises(ParamsError, match="nomp.p_fa"):
        nomp_config({"nomp": {"p_fa": 1.5}})
    with pytest.raises(ParamsError, match="nomp.max_taps"):
        nomp_config({"nomp": {"max_taps": 2.5}})


@pytest.mark.parametrize("final_rounds", [0, 30])
def test_a_sample_is_fitted_as_if_alone(final_rounds: int) -> None:
    """A batch mixing one-tap and six-tap channels: every sample's estimate is the one it gets in
    a batch of its own (the one-tap samples stop first and get no passes meant for the others),
    with or without the closing passes."""
    g = torch.Generator().manual_seed(7)
    b = 12
    cell = 1.0 / (CPU.n_pilots * CPU.pilot_spacing * CPU.subcarrier_spacing_hz)
    n_taps = torch.tensor([1, 6] * (b // 2))
    delays = torch.rand(b, 6, generator=g, dtype=torch.float64) * 12 * cell
    gains = torch.complex(torch.randn(b, 6, generator=g), torch.randn(b, 6, generator=g)).to(torch.complex128)
    gains = gains * (torch.arange(6) < n_taps[:, None])
    h = tap_response(delays, gains, CPU.subcarrier_spacing_hz, CPU.n_subcarriers)
    h = h / h.abs().pow(2).mean(-1, keepdim=True).sqrt()
    s = torch.full((b,), 1e-2, dtype=torch.float64)
    noise = torch.complex(torch.randn(b, CPU.n_pilots, generator=g, dtype=torch.float64),
                          torch.randn(b, CPU.n_pilots, generator=g, dtype=torch.float64))
    h_ls = h[:, torch.as_tensor(CPU.pilot_indices)] + noise * math.sqrt(1e-2 / 2)
    nomp = NOMP(CPU, NOMPConfig(final_rounds=final_rounds))
    together = nomp(h_ls, s)
    alone = torch.cat([nomp(h_ls[i:i + 1], s[i:i + 1]) for i in range(b)])
    assert torch.allclose(together, alone, rtol=0, atol=1e-9)


def test_closing_passes_lower_the_error_of_taps_a_cell_apart() -> None:
    """Two taps 1.05 cells apart at 10 dB: 30 closing passes once detection stops lower NOMP's
    error by more than 0.2 dB (the rule fires before the cyclic passes have separated them)."""
    h, h_ls, s = _two_taps_a_cell_apart()
    err = {f: float(db(nmse(NOMP(CPU, NOMPConfig(final_rounds=f))(h_ls, s), h).mean())) for f in (0, 30)}
    assert err[30] < err[0] - 0.2, err
