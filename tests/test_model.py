"""The estimator: shapes, RMS normalisation, and strict, key-naming checkpoint loads."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from chanest.estimators.checkpoint import CheckpointError, load_estimator, save_estimator
from chanest.estimators.model import ChannelEstimator, EstimatorConfig


def tiny_config(ofdm, residual: str = "robust_lmmse") -> EstimatorConfig:
    return EstimatorConfig(n_subcarriers=ofdm.n_subcarriers, pilot_indices=tuple(ofdm.pilot_indices),
                           d_model=16, n_heads=2, n_layers=2, d_ff=32, residual=residual,
                           prior_max_delay_s=1e-6)


def test_output_shape_dtype_and_scale_equivariance(small_ofdm):
    torch.manual_seed(0)
    net = ChannelEstimator(tiny_config(small_ofdm)).eval()
    h_ls = torch.randn(5, small_ofdm.n_pilots, dtype=torch.complex64)
    snr = torch.full((5,), 10.0)
    out = net(h_ls, snr)
    assert out.shape == (5, small_ofdm.n_subcarriers) and out.dtype == torch.complex64
    # input normalised by its RMS, output rescaled: the estimate scales with the input
    torch.testing.assert_close(net(3.0 * h_ls, snr), 3.0 * out, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="pass snr_db"):
        net(h_ls)


def test_every_projection_is_a_named_linear(small_ofdm):
    net = ChannelEstimator(tiny_config(small_ofdm))
    names = {n.rsplit(".", 1)[-1] for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)}
    assert {"mha_q_proj", "mha_k_proj", "mha_v_proj", "out_proj", "ffnn_linear1", "ffnn_linear2",
            "cross_q_proj", "cross_k_proj", "cross_v_proj", "cross_out_proj", "head"} <= names


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="token_size=10 must divide"):
        EstimatorConfig(n_subcarriers=48, pilot_indices=(0, 2), token_size=10)
    with pytest.raises(ValueError, match="n_heads=3 must divide"):
        EstimatorConfig(n_subcarriers=48, pilot_indices=(0, 2), d_model=16, n_heads=3)


def test_save_load_round_trip_is_exact(tmp_path, small_ofdm):
    net = ChannelEstimator(tiny_config(small_ofdm)).eval()
    save_estimator(tmp_path, net)
    back = load_estimator(tmp_path).eval()
    h_ls = torch.randn(3, small_ofdm.n_pilots, dtype=torch.complex64)
    snr = torch.tensor([0.0, 10.0, 20.0])
    assert torch.equal(net(h_ls, snr), back(h_ls, snr))
    assert json.loads((tmp_path / "config.json").read_text())["d_model"] == 16


def test_strict_load_names_every_missing_unexpected_and_misshaped_key(tmp_path, small_ofdm):
    save_estimator(tmp_path, ChannelEstimator(tiny_config(small_ofdm)))
    state = load_file(tmp_path / "model.safetensors")
    del state["layers.0.self_attn.mha_q_proj.weight"]
    del state["head.bias"]
    state["layers.0.extra.weight"] = torch.zeros(2)
    state["layers.1.ffnn_linear1.weight"] = torch.zeros(7, 16)
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError) as err:
        load_estimator(tmp_path)
    msg = str(err.value)
    for expected in ("missing key: layers.0.self_attn.mha_q_proj.weight", "missing key: head.bias",
                     "unexpected key: layers.0.extra.weight",
                     "mis-shaped key: layers.1.ffnn_linear1.weight: checkpoint (7, 16) vs model (32, 16)"):
        assert expected in msg
    assert "model.safetensors" in msg


def test_missing_or_invalid_checkpoint_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="config.json"):
        load_estimator(tmp_path)
    (tmp_path / "config.json").write_text('{"n_subcarriers": 48, "pilot_indices": [0], "depth": 3}')
    with pytest.raises(CheckpointError, match="unknown keys"):
        load_estimator(tmp_path)


def test_robust_lmmse_residual_equals_the_direct_wiener_filter(small_ofdm):
    """The eigen-form residual is R_hp (R_pp + s I)^-1 y for a uniform PDP over [0, tau_max]."""
    import dataclasses
    import math

    cfg = dataclasses.replace(tiny_config(small_ofdm), residual="robust_lmmse", prior_max_delay_s=1e-6)
    net = ChannelEstimator(cfg)
    k = torch.arange(small_ofdm.n_subcarriers, dtype=torch.float64)
    p = torch.tensor(cfg.pilot_indices, dtype=torch.float64)
    taus = torch.linspace(0, 1e-6, 20001, dtype=torch.float64)  # numerical average over tau

    def corr(dk):
        return torch.exp(-2j * math.pi * dk[..., None] * 30e3 * taus).mean(-1)

    r_pp, r_hp = corr(p[:, None] - p[None, :]), corr(k[:, None] - p[None, :])
    y = torch.randn(4, len(p), dtype=torch.complex128)
    snr = torch.tensor([0.0, 10.0, 20.0, 30.0])
    for i, s in enumerate(snr):
        direct = r_hp @ torch.linalg.solve(r_pp + 10 ** (-s / 10) * torch.eye(len(p)), y[i])
        got = net.residual_estimate(y[i : i + 1].to(torch.complex64), snr[i : i + 1])[0]
        assert (got.to(torch.complex128) - direct).abs().max() < 2e-3 * direct.abs().max()
    with pytest.raises(ValueError, match="residual='robust_lmmse' needs snr_input"):
        dataclasses.replace(cfg, snr_input=False)
