"""ReEsNet: a residual CNN from the LS pilots to the channel (Li et al., IEEE WCL 2020).

"Deep Residual Learning Meets OFDM Channel Estimation" (L. Li, H. Chen, H.-H. Chang, L. Liu): the
LS estimates at the pilots, real and imaginary parts as two channels, go through

1. a convolution to ``channels`` feature maps (``x0``);
2. ``blocks`` residual blocks, each ``conv - ReLU - conv`` plus its input;
3. a convolution, plus ``x0`` (the long skip);
4. a transposed convolution that upsamples the pilot grid to every subcarrier;
5. a convolution to two channels: the real and imaginary parts of ``H``.

The paper's grid is two-dimensional (subcarriers x OFDM symbols); a DMRS symbol is one column, so
every convolution here is one-dimensional along frequency (``kernel`` taps). The transposed
convolution has stride = the pilot spacing and kernel twice that, which maps ``n_pilots`` pilots to
``n_pilots * spacing`` subcarriers, aligned to a comb that starts at subcarrier 0. No SNR input, as
in the paper; the pilots are divided by their per-sample RMS on the way in and the output
multiplied back, as for chanest's estimator (the channels have unit mean energy, so this only
conditions the low-SNR samples).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chanest.channel.ofdm import OFDMConfig
from chanest.errors import ParamsError
from chanest.peers import Peer, register_peer
from chanest.utils.params import COUNT, from_section

KIND = "reesnet"


@dataclass(frozen=True)
class ReEsNetConfig:
    """Shape of a ReEsNet; saved as ``config.json`` (with ``kind``) beside its weights."""

    n_subcarriers: int
    pilot_spacing: int
    channels: int = 16
    blocks: int = 4
    kernel: int = 3

    RANGES = {"channels": COUNT, "blocks": COUNT, "kernel": COUNT}

    def __post_init__(self) -> None:
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (same-size convolutions), got {self.kernel}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, **asdict(self)}


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.conv_a = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.conv_b = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_b(F.relu(self.conv_a(x)))


class ReEsNet(nn.Module):
    """LS pilots (B, n_pilots) complex64 [+ SNR, ignored] -> H estimate (B, n_sc) complex64."""

    def __init__(self, cfg: ReEsNetConfig):
        super().__init__()
        self.cfg = cfg
        c, k, s = cfg.channels, cfg.kernel, cfg.pilot_spacing
        self.conv_in = nn.Conv1d(2, c, k, padding=k // 2)
        self.blocks = nn.ModuleList(ResBlock(c, k) for _ in range(cfg.blocks))
        self.conv_mid = nn.Conv1d(c, c, k, padding=k // 2)
        # (n_p - 1) s - 2 (s // 2) + 2 s = n_p s for even s; odd s pads one more on the right
        self.upsample = nn.ConvTranspose1d(c, c, 2 * s, stride=s, padding=s // 2, output_padding=s % 2)
        self.conv_out = nn.Conv1d(c, 2, k, padding=k // 2)

    def forward(self, h_ls: Tensor, snr_db: Tensor | None = None) -> Tensor:
        b = h_ls.shape[0]
        scale = h_ls.abs().pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
        x = torch.view_as_real(h_ls / scale).transpose(1, 2)  # (B, 2, n_pilots)
        x0 = self.conv_in(x)
        x = x0
        for block in self.blocks:
            x = block(x)
        x = self.upsample(self.conv_mid(x) + x0)
        out = self.conv_out(x)[..., : self.cfg.n_subcarriers]  # (B, 2, n_sc)
        return torch.view_as_complex(out.transpose(1, 2).contiguous()).view(b, -1) * scale


def build(section: dict[str, Any], params: dict[str, Any], ofdm: OFDMConfig) -> ReEsNet:
    pilots = ofdm.pilot_indices.tolist()
    spacing = pilots[1] - pilots[0] if len(pilots) > 1 else 1
    if pilots[0] != 0 or pilots != list(range(0, ofdm.n_subcarriers, spacing)):
        raise ParamsError(f"params: ofdm: ReEsNet needs a regular pilot comb from subcarrier 0 over the "
                          f"whole band, got {len(pilots)} pilots from {pilots[0]} every {spacing}")
    return ReEsNet(from_section(ReEsNetConfig, section, "peers.reesnet",
                                given={"n_subcarriers": ofdm.n_subcarriers, "pilot_spacing": spacing}))


def from_config(cfg: dict[str, Any]) -> ReEsNet:
    cfg = {k: v for k, v in cfg.items() if k != "kind"}
    return ReEsNet(ReEsNetConfig(**cfg))


register_peer(Peer(
    name="reesnet", label="ReEsNet (residual CNN)", color="#e377c2", color_lora="#a8327f", marker="*",
    build=build, from_config=from_config, kind=KIND,
    # the convolutions at the pilots' resolution: the residual blocks and the one after them
    lora_targets=("conv_a", "conv_b", "conv_mid"),
))
