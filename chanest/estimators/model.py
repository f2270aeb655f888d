"""The v4 estimator: a learned-query transformer decoder from DMRS pilots to the full channel.

Data flow for a batch of ``B`` samples (``n_sc`` subcarriers, tokens of ``T`` subcarriers,
``n_tok = n_sc / T`` tokens, width ``D = d_model``):

1. LS estimates at the pilots, (B, n_pilots) complex, are divided by their per-sample RMS and
   placed on the subcarrier grid (zeros elsewhere), then cut into ``n_tok`` tokens of ``T``
   subcarriers: (B, n_tok, 2T) real (re and im). ``pilot_embed`` maps each to D, plus a learned
   position embedding: the memory.
2. ``n_tok`` learned queries (one per output token) plus their own position embedding, plus an
   embedding of the SNR in dB (``snr_input``), plus (``query_from_pilots``) the embedding of the
   pilot token at the same place, which gives every output token a direct path from its own
   pilots from the first step (the research v4 queries started from the learned embedding only
   and had to learn that routing through attention), run through ``n_layers`` pre-LayerNorm decoder
   layers: self-attention over queries, cross-attention from queries to the memory, feed-forward.
3. ``head`` maps every query to 2T real outputs (re and im of its T subcarriers); reassembled,
   added to a ``residual`` estimate (so the network learns a correction), times the input RMS,
   they are H on all subcarriers, (B, n_sc) complex64.

The residual is LS + linear interpolation, the robust LMMSE (uniform PDP over the CP), or (the
default) ``delay_prior``: a small convolutional network reads the pilots' periodogram on a grid of
delays and predicts each sample's power-delay profile there, and the residual is the LMMSE that
profile implies (:mod:`chanest.estimators.delay_prior`), trained end to end through the solve. It carries the
physics the genie LMMSE exploits: where each sample's taps are and how strong.

Attention scores carry a learned relative position bias (``rel_pos_bias``) that starts local
(ALiBi slopes), so the layers begin as smoothers across neighbouring tokens.

Every projection is its own :class:`torch.nn.Linear` called as a module, with stable names, so a
``peft`` LoRA adapter can target any of them: ``mha_q_proj``, ``mha_k_proj``, ``mha_v_proj``,
``out_proj`` (self-attention), ``cross_q_proj``, ``cross_k_proj``, ``cross_v_proj``,
``cross_out_proj`` (cross-attention), ``ffnn_linear1``, ``ffnn_linear2`` (feed-forward).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.response import tap_response
from chanest.estimators.delay_prior import AtomPower, CompanionPower, DelayPrior, GridLMMSE, delay_grid
from chanest.estimators.nomp import NOMP, NOMPConfig
from chanest.utils.params import COUNT, DROPOUT, POSITIVE, Range, from_section, get


#: What the network's output is added to: nothing, LS + linear interpolation, or the robust LMMSE
#: (uniform power-delay profile over [0, prior_max_delay_s], at the sample's SNR).
#: ``delay_prior``: the LMMSE of a per-sample PDP on a delay grid predicted by a small network from
#: the pilots' periodogram (:mod:`chanest.estimators.delay_prior`), trained end to end with the rest.
RESIDUALS = ("none", "ls_linear", "robust_lmmse", "delay_prior")


@dataclass(frozen=True)
class EstimatorConfig:
    """Shape of an estimator. Saved as ``config.json`` beside its weights."""

    n_subcarriers: int
    pilot_indices: tuple[int, ...]
    token_size: int = 12
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 256
    dropout: float = 0.0
    snr_input: bool = True
    query_from_pilots: bool = True
    residual: str = "robust_lmmse"
    rel_pos_bias: bool = True
    subcarrier_spacing_hz: float = 30e3
    prior_max_delay_s: float = 2.34e-6
    delay_oversample: float = 2.0
    delay_channels: int = 32
    delay_blocks: int = 5
    offgrid_taps: int = 0
    offgrid_cyclic_rounds: int = 1
    offgrid_companions: tuple[float, ...] = ()
    offgrid_final_rounds: int = 0

    RANGES: ClassVar[dict[str, Range]] = {
        "token_size": COUNT, "d_model": COUNT, "n_heads": COUNT, "n_layers": COUNT, "d_ff": COUNT,
        "dropout": DROPOUT, "delay_oversample": POSITIVE, "delay_channels": COUNT, "delay_blocks": COUNT,
        "offgrid_taps": Range(0.0), "offgrid_cyclic_rounds": COUNT, "offgrid_final_rounds": Range(0.0),
    }

    def __post_init__(self) -> None:
        object.__setattr__(self, "pilot_indices", tuple(int(i) for i in self.pilot_indices))
        object.__setattr__(self, "offgrid_companions", tuple(float(c) for c in self.offgrid_companions))
        if self.n_subcarriers % self.token_size:
            raise ValueError(
                f"model.token_size={self.token_size} must divide n_subcarriers={self.n_subcarriers}"
            )
        if self.d_model % self.n_heads:
            raise ValueError(f"model.n_heads={self.n_heads} must divide d_model={self.d_model}")
        if not self.pilot_indices or max(self.pilot_indices) >= self.n_subcarriers:
            raise ValueError("pilot indices must be non-empty and < n_subcarriers")
        if self.residual not in RESIDUALS:
            raise ValueError(f"model.residual={self.residual!r} not in {RESIDUALS}")
        if self.residual in ("robust_lmmse", "delay_prior") and not self.snr_input:
            raise ValueError(f"model.residual={self.residual!r} needs snr_input=True")
        if self.delay_oversample <= 0 or self.delay_channels < 1 or self.delay_blocks < 0:
            raise ValueError("model.delay_oversample must be > 0, delay_channels >= 1, delay_blocks >= 0")
        if self.offgrid_taps < 0 or self.offgrid_cyclic_rounds < 1:
            raise ValueError("model.offgrid_taps must be >= 0 and offgrid_cyclic_rounds >= 1")
        if self.offgrid_taps and self.residual != "delay_prior":
            raise ValueError("model.offgrid_taps needs residual='delay_prior'")
        steps = {b - a for a, b in zip(self.pilot_indices, self.pilot_indices[1:])}
        if self.offgrid_taps and len(steps) > 1:
            raise ValueError("model.offgrid_taps needs pilots on a regular comb")
        if self.offgrid_companions and not self.offgrid_taps:
            raise ValueError("model.offgrid_companions needs offgrid_taps > 0")
        if any(not math.isfinite(c) or c == 0 for c in self.offgrid_companions):
            raise ValueError(f"model.offgrid_companions: offsets in delay-resolution cells, finite and "
                             f"non-zero; got {list(self.offgrid_companions)}")

    @property
    def n_tokens(self) -> int:
        return self.n_subcarriers // self.token_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["pilot_indices"] = list(self.pilot_indices)
        if self.offgrid_companions:
            d["offgrid_companions"] = list(self.offgrid_companions)
        else:  # written only when set: configs saved before the option stay byte for byte the same
            del d["offgrid_companions"]
        if not self.offgrid_final_rounds:  # likewise
            del d["offgrid_final_rounds"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EstimatorConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise KeyError(f"estimator config: unknown keys {sorted(unknown)}")
        return cls(**d)


def estimator_config(params: dict[str, Any], ofdm: OFDMConfig) -> EstimatorConfig:
    """The ``model`` params section as an :class:`EstimatorConfig` for the numerology ``ofdm``.

    The section sets the shape; the numerology sets the subcarriers, the pilots, their spacing and
    the robust prior's delay span (the CP plus the common delay offset the taps are shifted by).
    """
    return from_section(EstimatorConfig, get(params, "model"), "model", given={
        "n_subcarriers": ofdm.n_subcarriers,
        "pilot_indices": tuple(ofdm.pilot_indices.tolist()),
        "subcarrier_spacing_hz": ofdm.subcarrier_spacing_hz,
        "prior_max_delay_s": ofdm.cp_s + ofdm.max_delay_offset_s,
    })


def interpolation_matrix(pilot_indices: tuple[int, ...], n_subcarriers: int) -> Tensor:
    """(n_pilots, n_sc) float32 W such that ``h_pilots @ W`` is the linear interpolation of the
    pilots onto every subcarrier (linear extrapolation beyond the first and last pilot)."""
    p = torch.tensor(pilot_indices, dtype=torch.float64)
    w = torch.zeros(len(pilot_indices), n_subcarriers, dtype=torch.float64)
    k = torch.arange(n_subcarriers, dtype=torch.float64)
    if len(pilot_indices) == 1:
        w[0] = 1.0
        return w.float()
    left = (torch.searchsorted(p, k, right=True) - 1).clamp(0, len(pilot_indices) - 2)
    t = (k - p[left]) / (p[left + 1] - p[left])
    cols = torch.arange(n_subcarriers)
    w[left, cols] += 1 - t
    w[left + 1, cols] += t
    return w.float()


def robust_lmmse_basis(
    pilot_indices: tuple[int, ...], n_subcarriers: int, spacing_hz: float, max_delay_s: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Eigen-form of the robust LMMSE (uniform PDP over [0, max_delay_s], unit power).

    With R_pp = U diag(lam) U^H the pilot covariance and R_hp the subcarrier-pilot covariance,
    the estimate at noise variance s is ``R_hp U diag(1 / (lam + s)) U^H y``. Returns U
    (n_p, n_p), lam (n_p,), A = R_hp U (n_sc, n_p); complex64 / float32.
    """
    k = torch.arange(n_subcarriers, dtype=torch.float64)
    p = torch.tensor(pilot_indices, dtype=torch.float64)

    def corr(dk: Tensor) -> Tensor:  # E exp(-j 2 pi dk df tau), tau ~ U[0, max_delay_s]
        x = 2 * math.pi * dk * spacing_hz * max_delay_s
        safe = torch.where(x == 0, torch.ones_like(x), x)
        r = (1 - torch.exp(-1j * safe)) / (1j * safe)
        return torch.where(x == 0, torch.ones_like(r), r)

    lam, u = torch.linalg.eigh(corr(p[:, None] - p[None, :]))
    a = corr(k[:, None] - p[None, :]) @ u
    return u.to(torch.complex64), lam.clamp_min(0).float(), a.to(torch.complex64)


class Attention(nn.Module):
    """Multi-head attention with separately named projections (LoRA-addressable)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, prefix: str, n_tokens: int = 0):
        super().__init__()
        self.n_heads, self.dropout, self.prefix = n_heads, dropout, prefix
        # Learned relative position bias (n_heads, 2 n_tokens - 1), added to the attention scores:
        # query token i to key token j gets rel_bias[:, i - j + n_tokens - 1]. ALiBi-style start
        # (-slope_h |i - j|, slopes 2^(-8 (h+1) / n_heads)): heads begin as local smoothers of
        # several widths, which is what channel interpolation and denoising need.
        if n_tokens:
            slopes = 2.0 ** (-8.0 * torch.arange(1, n_heads + 1) / n_heads)
            dist = torch.arange(-(n_tokens - 1), n_tokens).abs().float()
            self.rel_bias = nn.Parameter(-slopes[:, None] * dist[None, :])
            idx = torch.arange(n_tokens)[:, None] - torch.arange(n_tokens)[None, :] + n_tokens - 1
            self.register_buffer("rel_index", idx, persistent=False)
        else:
            self.rel_bias = None
        names = {
            "mha": ("mha_q_proj", "mha_k_proj", "mha_v_proj", "out_proj"),
            "cross": ("cross_q_proj", "cross_k_proj", "cross_v_proj", "cross_out_proj"),
        }[prefix]
        self.q_name, self.k_name, self.v_name, self.o_name = names
        for name in names:
            setattr(self, name, nn.Linear(d_model, d_model))

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        """x: (B, n_q, D) queries; memory: (B, n_kv, D) keys/values. Returns (B, n_q, D)."""
        b, n_q, d = x.shape
        h = self.n_heads

        def split(t: Tensor) -> Tensor:  # (B, n, D) -> (B, h, n, D/h)
            return t.view(b, t.shape[1], h, d // h).transpose(1, 2)

        q = split(getattr(self, self.q_name)(x))
        k = split(getattr(self, self.k_name)(memory))
        v = split(getattr(self, self.v_name)(memory))
        p = self.dropout if self.training else 0.0
        bias = None if self.rel_bias is None else self.rel_bias[:, self.rel_index].unsqueeze(0)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        return getattr(self, self.o_name)(y.transpose(1, 2).reshape(b, n_q, d))


class DecoderLayer(nn.Module):
    """Pre-LayerNorm decoder layer: self-attention, cross-attention, feed-forward."""

    def __init__(self, cfg: EstimatorConfig):
        super().__init__()
        self.ln_self = nn.LayerNorm(cfg.d_model)
        n_rel = cfg.n_tokens if cfg.rel_pos_bias else 0
        self.self_attn = Attention(cfg.d_model, cfg.n_heads, cfg.dropout, "mha", n_rel)
        self.ln_cross = nn.LayerNorm(cfg.d_model)
        self.ln_memory = nn.LayerNorm(cfg.d_model)
        self.cross_attn = Attention(cfg.d_model, cfg.n_heads, cfg.dropout, "cross", n_rel)
        self.ln_ffnn = nn.LayerNorm(cfg.d_model)
        self.ffnn_linear1 = nn.Linear(cfg.d_model, cfg.d_ff)
        self.ffnn_linear2 = nn.Linear(cfg.d_ff, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        h = self.ln_self(x)
        x = x + self.drop(self.self_attn(h, h))
        x = x + self.drop(self.cross_attn(self.ln_cross(x), self.ln_memory(memory)))
        h = self.ffnn_linear2(self.drop(F.gelu(self.ffnn_linear1(self.ln_ffnn(x)))))
        return x + self.drop(h)


class ChannelEstimator(nn.Module):
    """LS pilots (B, n_pilots) complex64 [+ SNR (B,) dB] -> H estimate (B, n_sc) complex64."""

    def __init__(self, cfg: EstimatorConfig):
        super().__init__()
        self.cfg = cfg
        d, t, n_tok = cfg.d_model, cfg.token_size, cfg.n_tokens
        self.register_buffer(
            "pilot_index", torch.tensor(cfg.pilot_indices, dtype=torch.long), persistent=False
        )
        if cfg.residual == "ls_linear":
            self.register_buffer(
                "interp", interpolation_matrix(cfg.pilot_indices, cfg.n_subcarriers), persistent=False
            )
        elif cfg.residual == "robust_lmmse":
            u, lam, a = robust_lmmse_basis(cfg.pilot_indices, cfg.n_subcarriers,
                                           cfg.subcarrier_spacing_hz, cfg.prior_max_delay_s)
            self.register_buffer("rl_u", u, persistent=False)
            self.register_buffer("rl_lam", lam, persistent=False)
            self.register_buffer("rl_a", a, persistent=False)
        elif cfg.residual == "delay_prior":
            tau = delay_grid(cfg.pilot_indices, cfg.subcarrier_spacing_hz, cfg.prior_max_delay_s,
                             cfg.delay_oversample)
            self.grid_lmmse = GridLMMSE(cfg.pilot_indices, cfg.n_subcarriers, cfg.subcarrier_spacing_hz, tau)
            self.delay_prior = DelayPrior(len(cfg.pilot_indices), cfg.delay_channels, cfg.delay_blocks,
                                          residual_input=cfg.offgrid_taps > 0)
            if cfg.offgrid_taps:
                self.offgrid = offgrid_front_end(cfg)
                self.atom_power = AtomPower(len(cfg.pilot_indices), self.offgrid.cell_s)
            if cfg.offgrid_companions:
                self.companion_power = CompanionPower(
                    len(cfg.pilot_indices), self.offgrid.cell_s, cfg.offgrid_companions, self.offgrid.step_hz,
                    cfg.pilot_indices[0] * cfg.subcarrier_spacing_hz)
        self.pilot_embed = nn.Linear(2 * t, d)
        self.memory_pos = nn.Parameter(torch.randn(n_tok, d) * 0.02)
        self.queries = nn.Parameter(torch.randn(n_tok, d) * 0.02)
        self.query_pos = nn.Parameter(torch.randn(n_tok, d) * 0.02)
        self.snr_embed = nn.Linear(1, d) if cfg.snr_input else None
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layers))
        self.ln_out = nn.LayerNorm(d)
        self.head = nn.Linear(d, 2 * t)
        self.apply(self._init_weights)
        if cfg.offgrid_taps:  # off the grid the residual is already NOMP-grade: start exactly there
            nn.init.zeros_(self.head.weight)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    def tokens(self, h_ls: Tensor) -> tuple[Tensor, Tensor]:
        """Normalise and tokenise pilots: returns ((B, n_tok, 2T) float, (B, 1) RMS scale)."""
        b = h_ls.shape[0]
        scale = h_ls.abs().pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
        grid = h_ls.new_zeros(b, self.cfg.n_subcarriers)
        grid[:, self.pilot_index] = h_ls / scale
        grid = torch.view_as_real(grid).view(b, self.cfg.n_tokens, self.cfg.token_size, 2)
        return grid.transpose(2, 3).reshape(b, self.cfg.n_tokens, -1), scale

    def forward(self, h_ls: Tensor, snr_db: Tensor | None = None) -> Tensor:
        tok, scale = self.tokens(h_ls)
        b = tok.shape[0]
        memory = self.pilot_embed(tok) + self.memory_pos
        x = (self.queries + self.query_pos).expand(b, -1, -1)
        if self.cfg.query_from_pilots:  # each query starts from its own pilot token
            x = x + memory
        if self.snr_embed is not None:
            if snr_db is None:
                raise ValueError("this estimator was built with snr_input=True: pass snr_db")
            s = self.snr_embed((snr_db.to(tok.dtype) / 10.0).view(b, 1, 1))
            x, memory = x + s, memory + s
        for layer in self.layers:
            x = layer(x, memory)
        out = self.head(self.ln_out(x)).float()  # (B, n_tok, 2T): re then im per token (bf16 under AMP)
        out = out.view(b, self.cfg.n_tokens, 2, self.cfg.token_size).transpose(2, 3)
        h = torch.view_as_complex(out.reshape(b, self.cfg.n_subcarriers, 2).contiguous())
        with torch.autocast(h_ls.device.type, enabled=False):  # the residual (prior + LMMSE) in full precision
            return (h + self.residual_estimate(h_ls / scale, snr_db, scale)) * scale

    def residual_estimate(self, y: Tensor, snr_db: Tensor | None, scale: Tensor | None = None) -> Tensor:
        """The estimate the transformer corrects: normalised pilots (B, n_pilots) -> (B, n_sc).

        ``scale`` (B, 1): the RMS the pilots were divided by (for their noise variance).
        """
        if self.cfg.residual == "delay_prior":
            # in the units of y = h_ls / scale, the channel power per subcarrier is 1 / scale^2
            # (channels have unit energy), and the noise variance 10^(-SNR/10) / scale^2
            channel = 1.0 / scale[:, 0].float() ** 2
            noise_var = torch.pow(10.0, -snr_db.float() / 10) * channel
            z = self.grid_lmmse.matched_filter(y)
            if not self.cfg.offgrid_taps:
                logits = self.delay_prior(z, noise_var, snr_db)
                return self.grid_lmmse(y, noise_var, torch.softmax(logits, dim=-1) * channel[:, None])
            # off the grid: NOMP's taps join the grid as atoms of their own; the grid's prior
            # covers what they leave (its total: the residual's power above the noise, times a
            # learned gate); each atom's prior is its power, scaled from its context (AtomPower)
            with torch.no_grad():
                atoms, gains = self.offgrid.fit(y, noise_var)
                at_pilots = tap_response(atoms, gains, self.offgrid.step_hz, self.offgrid.n,
                                         self.cfg.pilot_indices[0] * self.cfg.subcarrier_spacing_hz)
                rest = (y.to(torch.complex128) - at_pilots).to(y.dtype)
                left = (rest.abs().pow(2).mean(-1).float() - noise_var).clamp_min(1e-4 * channel)
            logits, gate = self.delay_prior(z, noise_var, snr_db, self.grid_lmmse.matched_filter(rest))
            left = left * 2 * torch.sigmoid(gate)
            atom_power = self.atom_power(gains, atoms, noise_var, snr_db)
            if self.cfg.offgrid_companions and atoms.shape[-1]:  # undetected taps at known offsets
                extra, extra_power = self.companion_power(atoms, gains, rest, noise_var, snr_db)
                atoms, atom_power = torch.cat([atoms, extra], -1), torch.cat([atom_power, extra_power], -1)
            return self.grid_lmmse(y, noise_var, torch.softmax(logits, dim=-1) * left[:, None],
                                   atoms=atoms, atom_power=atom_power)
        if self.cfg.residual == "ls_linear":
            return y @ self.interp.to(y.dtype)
        if self.cfg.residual == "robust_lmmse":
            noise_var = torch.pow(10.0, -snr_db.to(self.rl_lam.dtype) / 10).unsqueeze(-1)
            z = (y @ self.rl_u.conj()) / (self.rl_lam + noise_var)
            return z @ self.rl_a.T
        return torch.zeros_like(y[:, :1]).expand(-1, self.cfg.n_subcarriers)


def offgrid_front_end(cfg: EstimatorConfig) -> NOMP:
    """The NOMP that finds a sample's off-grid taps (``model.offgrid_taps`` of them at most).

    After each of its first 4 detections it runs ``model.offgrid_cyclic_rounds`` cyclic passes
    (taps a resolution cell apart, found early, need many passes to separate), after later
    ones at most NOMP's 3, so that dense channels (many atoms) cost what they did; once a
    sample's detection stops, ``model.offgrid_final_rounds`` closing passes over its taps.
    """
    p = cfg.pilot_indices
    ofdm = OFDMConfig(subcarrier_spacing_hz=cfg.subcarrier_spacing_hz, n_subcarriers=cfg.n_subcarriers,
                      fft_size=cfg.n_subcarriers, cp_s=cfg.prior_max_delay_s, dmrs_symbol=0,
                      pilot_spacing=p[1] - p[0], pilot_offset=p[0], delay_offset_max_cp=0.0)
    rounds = cfg.offgrid_cyclic_rounds
    return NOMP(ofdm, NOMPConfig(max_taps=cfg.offgrid_taps, cyclic_rounds=rounds,
                                 final_rounds=cfg.offgrid_final_rounds),
                later_rounds=(4, min(rounds, 3)))


def n_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
