"""The delay-grid LMMSE head: exact gradients, agreement with the genie LMMSE, LoRA on its layers."""

from __future__ import annotations

import math

import pytest
import torch

from chanest.estimators.baselines import genie_lmmse, ls_linear
from chanest.estimators import delay_prior
from chanest.estimators.delay_prior import AtomPower, CompanionPower, GridLMMSE, delay_grid, hermitian_solve
from chanest.estimators.lora import AdapterError, LoraParams, wrap
from chanest.estimators.model import ChannelEstimator
from chanest.channel.sampler import nmse
from chanest.channel.ofdm import OFDMConfig
from chanest.channel.response import tap_response
from chanest.estimators.nomp import NOMP, NOMPConfig
from test_model import tiny_config


def test_hermitian_solve_gradients_equal_autograd_through_cholesky():
    torch.manual_seed(0)
    a = torch.randn(3, 6, 6, dtype=torch.complex128, requires_grad=True)
    r = torch.randn(3, 6, dtype=torch.complex128, requires_grad=True)
    w = torch.randn(3, 6, dtype=torch.complex128)

    def reference(m, rhs):
        return torch.cholesky_solve(rhs.unsqueeze(-1), torch.linalg.cholesky(m)).squeeze(-1)

    grads = []
    for solve in (hermitian_solve, reference):
        m = a @ a.mH + torch.eye(6)
        grads.append(torch.autograd.grad((solve(m, r) * w).real.sum(), (a, r)))
    for mine, ref in zip(*grads):
        torch.testing.assert_close(mine, ref, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a, r: hermitian_solve(a @ a.mH + torch.eye(6), r), (a, r))


def grid_setup(ofdm, seed=0, batch=200, snr_db=20.0):
    """Channels whose taps sit exactly on the delay grid, with a random per-sample PDP."""
    g = torch.Generator().manual_seed(seed)
    pilots = tuple(ofdm.pilot_indices.tolist())
    tau = delay_grid(pilots, ofdm.subcarrier_spacing_hz, 1e-6, 2.0)
    grid = GridLMMSE(pilots, ofdm.n_subcarriers, ofdm.subcarrier_spacing_hz, tau)
    power = torch.rand(batch, len(tau), generator=g, dtype=torch.float64) ** 4  # a few strong taps
    power = power / power.sum(1, keepdim=True)
    gains = torch.complex(torch.randn(batch, len(tau), generator=g, dtype=torch.float64),
                          torch.randn(batch, len(tau), generator=g, dtype=torch.float64))
    gains = gains * (power / 2).sqrt()
    delays = tau.expand(batch, -1)
    h = tap_response(delays, gains, ofdm.subcarrier_spacing_hz, ofdm.n_subcarriers)
    s = 10 ** (-snr_db / 10)
    noise = torch.complex(torch.randn(batch, ofdm.n_pilots, generator=g, dtype=torch.float64),
                          torch.randn(batch, ofdm.n_pilots, generator=g, dtype=torch.float64))
    y = h[:, ofdm.pilot_indices] + noise * math.sqrt(s / 2)
    return grid, delays, power, h, y, torch.full((batch,), s)


def test_grid_lmmse_is_the_genie_lmmse_with_the_grid_as_taps(small_ofdm):
    grid, delays, power, h, y, s = grid_setup(small_ofdm)
    mine = grid(y.to(torch.complex64), s.float(), power.float())
    genie = genie_lmmse(y, delays, power, s, small_ofdm)
    assert 10 * math.log10(float(nmse(mine.to(torch.complex128), genie).mean())) < -50
    # told the true prior of on-grid taps it is the MMSE estimator: far better than LS
    ls = ls_linear(y, small_ofdm)
    assert float(nmse(mine.to(torch.complex128), h).mean()) < 0.3 * float(nmse(ls, h).mean())


def test_grid_lmmse_inference_path_equals_the_differentiable_one(small_ofdm):
    grid, _, power, _, y, s = grid_setup(small_ofdm, batch=50)
    args = (y.to(torch.complex64), s.float(), power.float())
    with torch.enable_grad():
        trained = grid(*args)  # built out of place, solved through hermitian_solve
    with torch.no_grad():
        fast = grid(*args)  # built in place, solved directly
    assert float(nmse(fast, trained).max()) < 1e-12


def test_grid_lmmse_gradient_reaches_the_prior(small_ofdm):
    grid, _, power, h, y, s = grid_setup(small_ofdm, batch=8)
    logits = torch.zeros_like(power).float().requires_grad_(True)

    def loss_at(z):
        return nmse(grid(y.to(torch.complex64), s.float(), torch.softmax(z, -1)), h.to(torch.complex64)).mean()

    loss = loss_at(logits)
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0
    # one step along the gradient lowers the error (it points somewhere useful)
    after = loss_at(logits - 0.5 * grad / grad.abs().max())
    assert after < loss


def test_a_prior_with_exact_zeros_gives_finite_gradients_and_the_same_estimate(small_ofdm):
    # a peaked prior underflows to exact zeros in float32 (softmax of logits 200 apart); sqrt's
    # derivative at 0 made such a step's gradient non-finite (seen training from scratch on
    # near-flat NYUSIM RMa channels)
    grid, _, _, h, y, s = grid_setup(small_ofdm, batch=8)
    logits = torch.zeros(8, grid.n_grid)
    logits[:, :3] = 200.0
    logits.requires_grad_(True)
    power = torch.softmax(logits, -1)
    assert (power == 0).any()
    est = grid(y.to(torch.complex64), s.float(), power)
    (grad,) = torch.autograd.grad(nmse(est, h.to(torch.complex64)).mean(), logits)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0
    # the value is the clamped square root's, bit for bit
    p = torch.tensor([-1.0, 0.0, 1e-300, 0.25, 2.0], dtype=torch.float64)
    assert torch.equal(delay_prior._amplitude(p), p.clamp_min(0.0).sqrt())


def test_lora_reaches_the_delay_prior_but_not_its_dilated_convolutions(small_ofdm):
    torch.manual_seed(0)
    base = ChannelEstimator(tiny_config(small_ofdm, "delay_prior")).eval()
    targets = ("mha_q_proj", "delay_conv_in", "delay_context", "delay_conv_out")
    model = wrap(base, LoraParams(r=2, alpha=4.0, target_modules=targets), seed=0)
    wrapped = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if hasattr(m, "lora_B")}
    assert set(targets) <= wrapped
    for m in model.modules():  # give every B a value, as training would
        if hasattr(m, "lora_B"):
            torch.nn.init.normal_(m.lora_B["default"].weight, std=0.1)
    h_ls = torch.randn(4, small_ofdm.n_pilots, dtype=torch.complex64)
    snr = torch.tensor([0.0, 10.0, 20.0, 30.0])
    with torch.no_grad():
        adapted = model(h_ls, snr)
        merged = model.merge_and_unload()(h_ls, snr)
    torch.testing.assert_close(adapted, merged, rtol=1e-4, atol=1e-5)
    with pytest.raises(AdapterError, match=r"\['delay_conv2'\] match no nn.Linear or undilated"):
        wrap(ChannelEstimator(tiny_config(small_ofdm, "delay_prior")),
             LoraParams(target_modules=("delay_conv2",)), 0)


def test_off_grid_atoms_joined_to_the_grid_give_the_genie_lmmse(small_ofdm):
    """Taps off the grid, told as atoms with their true powers (the grid's prior zero): the joint
    LMMSE is the genie LMMSE; with the grid's prior as well, the two agree where the grid adds
    nothing, and the inference path equals the differentiable one."""
    g = torch.Generator().manual_seed(5)
    b = 100
    pilots = tuple(small_ofdm.pilot_indices.tolist())
    tau = delay_grid(pilots, small_ofdm.subcarrier_spacing_hz, 1e-6, 2.0)
    grid = GridLMMSE(pilots, small_ofdm.n_subcarriers, small_ofdm.subcarrier_spacing_hz, tau)
    delays = torch.rand(b, 3, generator=g, dtype=torch.float64) * 8e-7  # anywhere, not on the grid
    power = torch.rand(b, 3, generator=g, dtype=torch.float64) + 0.1
    power = power / power.sum(1, keepdim=True)
    gains = torch.complex(torch.randn(b, 3, generator=g, dtype=torch.float64),
                          torch.randn(b, 3, generator=g, dtype=torch.float64)) * (power / 2).sqrt()
    h = tap_response(delays, gains, small_ofdm.subcarrier_spacing_hz, small_ofdm.n_subcarriers)
    s = torch.full((b,), 1e-2)
    noise = torch.complex(torch.randn(b, small_ofdm.n_pilots, generator=g, dtype=torch.float64),
                          torch.randn(b, small_ofdm.n_pilots, generator=g, dtype=torch.float64))
    y = (h[:, small_ofdm.pilot_indices] + noise * 0.1 / math.sqrt(2)).to(torch.complex64)
    zero = torch.zeros(b, len(tau))
    with torch.no_grad():
        mine = grid(y, s, zero, atoms=delays, atom_power=power)
    genie = genie_lmmse(y.to(torch.complex128), delays, power, s.double(), small_ofdm)
    assert 10 * math.log10(float(nmse(mine.to(torch.complex128), genie).mean())) < -50
    on_grid = grid(y, s, torch.full((b, len(tau)), 1e-3))
    err = lambda est: float(nmse(est.to(torch.complex128), h).mean())  # noqa: E731
    assert err(mine) < 0.5 * err(on_grid)
    both = (y, s, torch.full((b, len(tau)), 1e-4), delays, power)
    with torch.enable_grad():
        trained = grid(*both)
    with torch.no_grad():
        fast = grid(*both)
    assert float(nmse(fast, trained).max()) < 1e-10


def test_an_off_grid_estimator_trains_its_atom_powers(small_ofdm):
    """``model.offgrid_taps``: NOMP's taps join the prior; the atom-power MLP gets gradients, the
    output is finite, and an unknown combination is refused."""
    import dataclasses

    cfg = dataclasses.replace(tiny_config(small_ofdm, "delay_prior"), offgrid_taps=4)
    torch.manual_seed(0)
    net = ChannelEstimator(cfg)
    g = torch.Generator().manual_seed(0)
    n = small_ofdm.n_pilots
    h_ls = torch.complex(torch.randn(8, n, generator=g), torch.randn(8, n, generator=g))
    out = net(h_ls, torch.full((8,), 20.0))
    assert out.shape == (8, small_ofdm.n_subcarriers) and torch.isfinite(torch.view_as_real(out)).all()
    out.abs().pow(2).sum().backward()
    assert net.atom_power.offgrid_power_out.weight.grad.abs().sum() > 0
    assert net.delay_prior.delay_conv_out.weight.grad[1].abs().sum() > 0  # the grid's gate
    with pytest.raises(ValueError, match="offgrid_taps needs residual='delay_prior'"):
        dataclasses.replace(tiny_config(small_ofdm), offgrid_taps=4)


def test_an_atom_is_described_by_its_power_and_place_among_the_others():
    """AtomPower's features: the atom's SNR, the sample's, its power relative to the strongest
    atom, its delay from it and its distance to the nearest other atom (cells, log1p / 3); the
    padding (gain 0) gets no prior, and a batch without atoms gives an empty one."""
    cell = 2e-9
    power = AtomPower(n_pilots=100, cell_s=cell)
    gains = torch.tensor([[0.1 ** 0.5, 1.0, 0.01 ** 0.5, 0.0]], dtype=torch.complex128)
    atoms = torch.tensor([[12.5, 10.0, 40.0, 0.0]], dtype=torch.float64) * cell
    f = power.features(gains, atoms, torch.tensor([1e-2]), torch.tensor([20.0]))
    want = torch.tensor([[math.log10(0.1 * 100 / 1e-2), 2.0, -1.0, math.log1p(2.5), math.log1p(2.5)],
                         [math.log10(100 / 1e-2), 2.0, 0.0, 0.0, math.log1p(2.5)],
                         [math.log10(0.01 * 100 / 1e-2), 2.0, -2.0, math.log1p(30.0), math.log1p(27.5)]])
    want[:, [0, 2, 3, 4]] /= 3
    torch.testing.assert_close(f[0, :3], want.float(), rtol=0, atol=1e-4)
    p = power(gains, atoms, torch.tensor([1e-2]), torch.tensor([20.0]))
    torch.testing.assert_close(p[0, :3], gains.abs().pow(2)[0, :3])  # starts as the plug-in |g|^2
    assert p[0, 3] == 0
    empty = torch.zeros(2, 0, dtype=torch.complex128)
    assert power(empty, empty.real, torch.ones(2), torch.zeros(2)).shape == (2, 0)


def test_an_off_grid_estimator_starts_as_its_front_end(small_ofdm):
    """Off the grid the transformer's head starts at zero and the grid's total prior at the power
    the atoms leave above the noise: an untrained estimator is its residual estimate, bit for bit,
    and that estimate is about as good as its NOMP front-end alone on sparse channels (the atoms
    carry the taps, the grid adds little), so training starts from a NOMP-grade estimate. The
    front-end has closing passes, as in the research run (without them a sample that stops early
    keeps its taps where its last detection left them, and the grid makes up a dB)."""
    import dataclasses

    cfg = dataclasses.replace(tiny_config(small_ofdm, "delay_prior"), offgrid_taps=8, offgrid_cyclic_rounds=3,
                              offgrid_final_rounds=10)
    torch.manual_seed(0)
    net = ChannelEstimator(cfg).eval()
    g = torch.Generator().manual_seed(3)
    b = 200
    delays = torch.rand(b, 3, generator=g, dtype=torch.float64) * 8e-7
    power = torch.rand(b, 3, generator=g, dtype=torch.float64) + 0.1
    power = power / power.sum(1, keepdim=True)
    gains = torch.complex(torch.randn(b, 3, generator=g, dtype=torch.float64),
                          torch.randn(b, 3, generator=g, dtype=torch.float64)) * (power / 2).sqrt()
    h = tap_response(delays, gains, small_ofdm.subcarrier_spacing_hz, small_ofdm.n_subcarriers)
    h = h / h.abs().pow(2).mean(-1, keepdim=True).sqrt()  # unit band energy, as the sampler's
    snr = torch.full((b,), 20.0)
    noise = torch.complex(torch.randn(b, small_ofdm.n_pilots, generator=g, dtype=torch.float64),
                          torch.randn(b, small_ofdm.n_pilots, generator=g, dtype=torch.float64))
    y = (h[:, small_ofdm.pilot_indices] + noise * 0.1 / math.sqrt(2)).to(torch.complex64)
    with torch.no_grad():
        out = net(y, snr)
        _, scale = net.tokens(y)
        residual = net.residual_estimate(y / scale, snr, scale) * scale
        front = net.offgrid(y, torch.full((b,), 1e-2))
    assert torch.equal(out, residual)
    db = lambda est: 10 * math.log10(float(nmse(est.to(torch.complex128), h).mean()))  # noqa: E731
    assert db(out) < db(ls_linear(y, small_ofdm)) - 5
    assert abs(db(out) - db(front)) < 0.5


def test_a_companion_recovers_the_weak_tap_one_cell_after_the_strongest():
    """A strong tap (unit gain) and a weak one a delay-resolution cell after it, the weak one at 6 dB over
    the noise on the pilots (below NOMP's stopping rule, 10.1 dB here): the front-end mostly finds
    the strong tap alone; its companion at +1 cell sits on the weak tap and, with the plug-in
    prior ``|z|^2`` (the MLP at its zero start), the LMMSE recovers most of it: the NMSE falls by
    over 1.5 dB. Where no such tap exists the companion fits noise only: it costs under 1 dB,
    which the learned prior is there to remove. A sample with no atom gets no companion prior."""
    ofdm = OFDMConfig()  # 312 pilots on a comb of 2 at 30 kHz: a cell is 53.4 ns
    nomp = NOMP(ofdm, NOMPConfig(max_taps=8))
    n, cell, df = ofdm.n_pilots, nomp.cell_s, ofdm.subcarrier_spacing_hz
    g = torch.Generator().manual_seed(11)
    b, s = 300, 1e-2
    strong = (2 + 28 * torch.rand(b, 1, generator=g, dtype=torch.float64)) * cell
    weak_power = 10 ** 0.6 * s / n  # 6 dB over the noise, summed over the pilots

    def cn(var):
        return torch.complex(torch.randn(b, 1, generator=g, dtype=torch.float64),
                             torch.randn(b, 1, generator=g, dtype=torch.float64)) * math.sqrt(var / 2)

    noise = torch.complex(torch.randn(b, n, generator=g, dtype=torch.float64),
                          torch.randn(b, n, generator=g, dtype=torch.float64)) * math.sqrt(s / 2)
    unit = torch.polar(torch.ones(b, 1, dtype=torch.float64), 2 * math.pi * torch.rand(b, 1, generator=g, dtype=torch.float64))
    pilots = tuple(ofdm.pilot_indices.tolist())
    grid = GridLMMSE(pilots, ofdm.n_subcarriers, df, delay_grid(pilots, df, ofdm.cp_s, 1.0))
    companion = CompanionPower(n, cell, (1.0,), nomp.step_hz, 0.0)
    gain_db = {}
    for name, weak in (("pair", cn(weak_power)), ("single", torch.zeros(b, 1, dtype=torch.complex128))):
        delays, gains = torch.cat([strong, strong + cell], 1), torch.cat([unit, weak], 1)
        h = tap_response(delays, gains, df, ofdm.n_subcarriers)
        y = (h[:, ofdm.pilot_indices] + noise).to(torch.complex64)
        atoms, found = nomp.fit(y, s)
        rest = y.to(torch.complex128) - tap_response(atoms, found, nomp.step_hz, n)
        sv, snr = torch.full((b,), s), torch.full((b,), 20.0)
        with torch.no_grad():
            extra, prior = companion(atoms, found, rest, sv, snr)
            alone = grid(y, sv, torch.zeros(b, grid.n_grid), atoms=atoms, atom_power=found.abs().pow(2))
            joined = grid(y, sv, torch.zeros(b, grid.n_grid), atoms=torch.cat([atoms, extra], 1),
                          atom_power=torch.cat([found.abs().pow(2), prior], 1))
        db = lambda est: 10 * math.log10(float(nmse(est.to(torch.complex128), h).mean()))  # noqa: E731
        gain_db[name] = db(alone) - db(joined)
        if name == "pair":
            assert float((found.abs() > 0).sum(1).float().mean()) < 1.3  # the weak tap mostly missed
            placed = (extra[:, 0] - delays[:, 1]).abs() / cell
            assert float(placed.median()) < 0.01  # on the weak tap where the strong one was found
    assert gain_db["pair"] > 1.5, gain_db
    assert gain_db["single"] > -1.0, gain_db
    none = torch.zeros(1, 2, dtype=torch.complex128)
    _, p = companion(none.real + 1e-7, none, torch.ones(1, n, dtype=torch.complex128), torch.ones(1), torch.zeros(1))
    assert p.abs().sum() == 0


def test_companions_are_a_trained_part_of_the_off_grid_estimator(small_ofdm):
    """``model.offgrid_companions``: the companions' prior MLP gets gradients and is LoRA-addressable
    by name; the option needs the off-grid front-end and non-zero offsets; a config without it
    is written as before (no key), so older checkpoints and their hashes are unchanged."""
    import dataclasses

    cfg = dataclasses.replace(tiny_config(small_ofdm, "delay_prior"), offgrid_taps=4,
                              offgrid_companions=[-1, 1.0])
    assert cfg.offgrid_companions == (-1.0, 1.0)
    torch.manual_seed(0)
    net = ChannelEstimator(cfg)
    names = {n.rsplit(".", 1)[-1] for n, _ in net.named_modules()}
    assert {"offgrid_companion_in", "offgrid_companion_out"} <= names
    g = torch.Generator().manual_seed(0)
    n = small_ofdm.n_pilots
    h_ls = torch.complex(torch.randn(8, n, generator=g), torch.randn(8, n, generator=g))
    out = net(h_ls, torch.full((8,), 20.0))
    assert torch.isfinite(torch.view_as_real(out)).all()
    out.abs().pow(2).sum().backward()
    assert net.companion_power.offgrid_companion_out.weight.grad.abs().sum() > 0
    assert cfg.to_dict()["offgrid_companions"] == [-1.0, 1.0]
    assert "offgrid_companions" not in dataclasses.replace(cfg, offgrid_companions=()).to_dict()
    with pytest.raises(ValueError, match="offgrid_companions needs offgrid_taps"):
        dataclasses.replace(cfg, offgrid_taps=0)
    with pytest.raises(ValueError, match="non-zero"):
        dataclasses.replace(cfg, offgrid_companions=(1.0, 0.0))


def test_front_end_closing_passes_are_saved_only_when_set(small_ofdm):
    """``model.offgrid_final_rounds`` reaches the front-end's NOMP, round-trips through the saved
    config, and a config without it is written as before (no key)."""
    import dataclasses

    from chanest.estimators.model import EstimatorConfig

    cfg = dataclasses.replace(tiny_config(small_ofdm, "delay_prior"), offgrid_taps=4, offgrid_final_rounds=10)
    assert ChannelEstimator(cfg).offgrid.cfg.final_rounds == 10
    assert EstimatorConfig.from_dict(cfg.to_dict()) == cfg
    assert "offgrid_final_rounds" not in dataclasses.replace(cfg, offgrid_final_rounds=0).to_dict()


def test_point_split_takes_the_off_grid_residual_apart_as_the_estimator_builds_it(small_ofdm):
    """``benchmarks/point_split.py`` rebuilds the residual piece by piece (atoms with their priors,
    then the companions, then the grid, then the grid at fixed scales): the grid piece is the
    estimator's own residual (at the untrained gate's scale of 1, ``grid_x1``), and with
    the head's weights set the estimator adds its correction on top, so a change to
    ``ChannelEstimator.residual_estimate`` the benchmark does not follow fails here."""
    import dataclasses
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    from point_split import _pieces

    cfg = dataclasses.replace(tiny_config(small_ofdm, "delay_prior"), offgrid_taps=4,
                              offgrid_companions=(-1.0, 1.0))
    torch.manual_seed(0)
    net = ChannelEstimator(cfg).eval()
    g = torch.Generator().manual_seed(1)
    n = small_ofdm.n_pilots
    h_ls = torch.complex(torch.randn(8, n, generator=g), torch.randn(8, n, generator=g))
    snr = torch.full((8,), 20.0)
    with torch.no_grad():
        pieces, gate = _pieces(net, h_ls, snr)
        assert gate.shape == (8,) and abs(gate - 1.0).max() < 1e-6  # the untrained gate: 2 sigmoid(0)
        assert list(pieces) == ["lmmse_atoms", "+companions", "+grid", "grid_x0", "grid_x0.5", "grid_x1", "grid_x2"]
        assert torch.allclose(pieces["+grid"], net(h_ls, snr), atol=1e-6)  # the head starts at zero
        assert torch.allclose(pieces["grid_x1"], pieces["+grid"], atol=1e-6)  # so does the gate: 2 sigmoid(0)
        assert torch.allclose(pieces["grid_x0"], pieces["+companions"], atol=1e-6)
        assert (pieces["grid_x2"] - pieces["+grid"]).abs().max() > 1e-3
        assert (pieces["lmmse_atoms"] - pieces["+grid"]).abs().max() > 1e-3  # the grid is a piece
        net.head.weight.normal_(0, 0.02, generator=g)
        assert (pieces["+grid"] - net(h_ls, snr)).abs().max() > 1e-3  # the correction is not
