"""chanest in a Sionna receiver: the estimator contract, the calibrated error variance, the docs'
PUSCH example as written, and the FR2 resource-grid link."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import re

import numpy as np
import pytest
import torch

import chanest
from chanest.channel.ofdm import OFDMConfig
from chanest.estimators.baselines import ls_linear
from chanest.estimators.checkpoint import save_estimator
from chanest.estimators.model import ChannelEstimator
from chanest.estimators.nomp import NOMP
from chanest.receiver import ChanestEstimator, calibrate
from chanest.receiver.grid_link import GridLink, GridLinkParams, SlotGrid, error_variance_check
from conftest import REPO
from test_model import tiny_config

SMALL = OFDMConfig(n_subcarriers=48, fft_size=64)


def halves(ofdm: OFDMConfig) -> tuple[chanest.ChannelSampler, chanest.ChannelSampler]:
    """Channels of the NYUSIM InF_Los file: even PDPs to calibrate on, odd ones held out."""
    pdps = chanest.PDPSet.from_pdps("NYU_InF", chanest.read_mat(REPO / "data/nyusim-28ghz/PDP_InF_Los.mat"))
    pdps = pdps.normalised()
    return (chanest.ChannelSampler(pdps.subset(np.arange(0, len(pdps), 2)), ofdm),
            chanest.ChannelSampler(pdps.subset(np.arange(1, len(pdps), 2)), ofdm))


def test_the_error_variance_is_calibrated_on_held_out_channels():
    """The variance each estimator reports, against the squared error it makes on channels of
    other PDPs: within 20% at every SNR, for a classical, a sparse and a learned estimator."""
    calib, held_out = halves(SMALL)
    torch.manual_seed(0)
    net = ChannelEstimator(tiny_config(SMALL, "delay_prior")).eval()
    nomp = NOMP(SMALL)
    methods = {"ls": lambda b: ls_linear(b.h_ls, SMALL), "nomp": lambda b: nomp(b.h_ls, b.noise_var),
               "learned": lambda b: net(b.h_ls, b.snr_db)}
    for name, f in methods.items():
        err_var = calibrate(f, calib, np.arange(-10.0, 45.0, 5.0), n_per_snr=256, seed=1)
        rows = error_variance_check(f, err_var, held_out, (0.0, 10.0, 20.0, 30.0), 512, seed=2)
        ratios = [r["ratio"] for r in rows]
        assert all(0.8 <= r <= 1.2 for r in ratios), (name, ratios)
    # and it follows the SNR: LS's error variance is the noise's, about -SNR dB (+- interpolation)
    err_var = calibrate(methods["ls"], calib, np.arange(-10.0, 45.0, 5.0), n_per_snr=256, seed=1)
    at = err_var(torch.tensor([0.0, 10.0])).mean(-1)
    assert 10 * math.log10(float(at[0])) == pytest.approx(-1.2, abs=1.0)
    assert 10 * math.log10(float(at[1])) == pytest.approx(-11.2, abs=1.0)


def test_in_a_resource_grid_it_returns_the_models_estimate_on_every_symbol(tmp_path):
    """y through Sionna's channel on a grid with chanest's pilots: the estimator reads the pilots,
    hands them to the model with their SNR, and returns its output (and the calibrated variance)
    on every OFDM symbol; pilots the model was not trained on are refused, naming both."""
    from sionna.phy.channel import ApplyOFDMChannel
    from sionna.phy.mapping import Mapper
    from sionna.phy.ofdm import ResourceGridMapper

    calib, held_out = halves(SMALL)
    torch.manual_seed(0)
    net = ChannelEstimator(tiny_config(SMALL, "delay_prior")).eval()
    slot = SlotGrid(SMALL, n_prb=2)
    rg = slot.resource_grid(seed=3)
    estimate = lambda b: net(b.h_ls, b.snr_db)  # noqa: E731
    est = ChanestEstimator(rg, estimate, calibrate(estimate, calib, (0.0, 20.0, 40.0), 16), channel_power=1.0)
    ch = held_out.sample(4, 0.0, torch.Generator().manual_seed(4))
    bits = torch.randint(0, 2, (4, 1, 1, int(rg.num_data_symbols) * 2), generator=torch.Generator().manual_seed(5))
    x = ResourceGridMapper(rg)(Mapper("qam", 2)(bits.float()))
    no = torch.tensor(0.01)
    y = ApplyOFDMChannel()(x, slot.h_freq(ch.h), no)
    h_hat, err_var = est(y, no)
    assert h_hat.shape == err_var.shape == (4, 1, 1, 1, 1, SMALL.n_symbols, SMALL.n_subcarriers)
    pilots = y[:, 0, 0, SMALL.dmrs_symbol, 8 + SMALL.pilot_indices] / est.pilots  # 8 guard bins
    with torch.no_grad():
        direct = net(pilots, torch.full((4,), 20.0))
    torch.testing.assert_close(h_hat[:, 0, 0, 0, 0, 5], direct)
    assert torch.equal(h_hat[:, ..., 0, :], h_hat[:, ..., 13, :]) and bool((err_var > 0).all())
    other = dataclasses.replace(SMALL, pilot_spacing=4)
    save_estimator(tmp_path / "model", net)
    with pytest.raises(ValueError, match=r"expects pilots on subcarriers \[0, 2, 4, 6\].*has them on \[0, 4, 8, 12\]"):
        ChanestEstimator.from_saved(tmp_path / "model", SlotGrid(other, 2).resource_grid(3), calib)


def test_the_docs_pusch_example_runs_as_written(tmp_path, monkeypatch):
    """docs/receiver.md's example, with a small saved model of the default numerology as MODEL:
    Sionna's PUSCHReceiver decodes eight slots with chanest's estimator inside it."""
    code = re.search(r"```python\n(.*?)```", (REPO / "docs/receiver.md").read_text(), re.S).group(1)
    torch.manual_seed(0)
    cfg = dataclasses.replace(tiny_config(OFDMConfig(), "delay_prior"))
    save_estimator(tmp_path / "model", ChannelEstimator(cfg))
    code, n = re.subn(r'^MODEL = "[^"]+"', f'MODEL = "{tmp_path / "model"}"', code, flags=re.M)
    assert n == 1
    monkeypatch.chdir(REPO)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/receiver.md", "exec"), {})
    ber = float(re.search(r"bit error rate ([0-9.]+)", out.getvalue()).group(1))
    assert 0.0 <= ber <= 0.5


def test_the_fr2_grid_link_decodes_with_perfect_csi_and_fails_in_noise():
    """The resource-grid link (pilots on a comb, data on a few PRBs, NR transport blocks): with the
    channel known every block decodes at 40 dB and none at -10 dB; LS decodes the same blocks at
    40 dB too, and every method sees the very same blocks (paired)."""
    calib, held_out = halves(SMALL)
    lp = GridLinkParams(methods=("perfect", "ls"), mcs_index=(5,), n_prb=4, batch_size=8)
    ls = lambda b: ls_linear(b.h_ls, SMALL)  # noqa: E731
    link = GridLink(SMALL, lp, 5, held_out, {"ls": ls}, {"ls": calibrate(ls, calib, (-10.0, 20.0, 50.0), 16)},
                    (1, 2, 3))
    assert link.tb_size > 0 and int(link.rg.num_data_symbols) == 4 * 12 * 14 - 24
    err, pdp = link.decode("perfect", 80, 0)  # lattice point 80: 40 dB
    assert not err.any() and len(pdp) == 8
    assert link.decode("perfect", -20, 0)[0].all()  # -10 dB
    assert not link.decode("ls", 80, 0)[0].any()
    assert np.array_equal(link.decode("ls", 80, 1)[1], link.decode("perfect", 80, 1)[1])
