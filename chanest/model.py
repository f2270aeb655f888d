"""The v4 estimator: a learned-query transformer decoder from DMRS pilots to the full channel.

Data flow for a batch of ``B`` samples (``n_sc`` subcarriers, tokens of ``T`` subcarriers,
``n_tok = n_sc / T`` tokens, width ``D = d_model``):

1. LS estimates at the pilots, (B, n_pilots) complex, are divided by their per-sample RMS and
   placed on the subcarrier grid (zeros elsewhere), then cut into ``n_tok`` tokens of ``T``
   subcarriers: (B, n_tok, 2T) real (re and im). ``pilot_embed`` maps each to D, plus a learned
   position embedding: the memory.
2. ``n_tok`` learned queries (one per output token) plus their own position embedding, plus an
   embedding of the SNR in dB (``snr_input``), run through ``n_layers`` pre-LayerNorm decoder
   layers: self-attention over queries, cross-attention from queries to the memory, feed-forward.
3. ``head`` maps every query to 2T real outputs (re and im of its T subcarriers); reassembled,
   times the input RMS, they are H on all subcarriers, (B, n_sc) complex64.

Every projection is its own :class:`torch.nn.Linear` called as a module, with stable names, so a
``peft`` LoRA adapter can target any of them: ``mha_q_proj``, ``mha_k_proj``, ``mha_v_proj``,
``out_proj`` (self-attention), ``cross_q_proj``, ``cross_k_proj``, ``cross_v_proj``,
``cross_out_proj`` (cross-attention), ``ffnn_linear1``, ``ffnn_linear2`` (feed-forward).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "pilot_indices", tuple(int(i) for i in self.pilot_indices))
        if self.n_subcarriers % self.token_size:
            raise ValueError(
                f"model.token_size={self.token_size} must divide n_subcarriers={self.n_subcarriers}"
            )
        if self.d_model % self.n_heads:
            raise ValueError(f"model.n_heads={self.n_heads} must divide d_model={self.d_model}")
        if not self.pilot_indices or max(self.pilot_indices) >= self.n_subcarriers:
            raise ValueError("pilot indices must be non-empty and < n_subcarriers")

    @property
    def n_tokens(self) -> int:
        return self.n_subcarriers // self.token_size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["pilot_indices"] = list(self.pilot_indices)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EstimatorConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise KeyError(f"estimator config: unknown keys {sorted(unknown)}")
        return cls(**d)


class Attention(nn.Module):
    """Multi-head attention with separately named projections (LoRA-addressable)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, prefix: str):
        super().__init__()
        self.n_heads, self.dropout, self.prefix = n_heads, dropout, prefix
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
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return getattr(self, self.o_name)(y.transpose(1, 2).reshape(b, n_q, d))


class DecoderLayer(nn.Module):
    """Pre-LayerNorm decoder layer: self-attention, cross-attention, feed-forward."""

    def __init__(self, cfg: EstimatorConfig):
        super().__init__()
        self.ln_self = nn.LayerNorm(cfg.d_model)
        self.self_attn = Attention(cfg.d_model, cfg.n_heads, cfg.dropout, "mha")
        self.ln_cross = nn.LayerNorm(cfg.d_model)
        self.ln_memory = nn.LayerNorm(cfg.d_model)
        self.cross_attn = Attention(cfg.d_model, cfg.n_heads, cfg.dropout, "cross")
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
        self.pilot_embed = nn.Linear(2 * t, d)
        self.memory_pos = nn.Parameter(torch.randn(n_tok, d) * 0.02)
        self.queries = nn.Parameter(torch.randn(n_tok, d) * 0.02)
        self.query_pos = nn.Parameter(torch.randn(n_tok, d) * 0.02)
        self.snr_embed = nn.Linear(1, d) if cfg.snr_input else None
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layers))
        self.ln_out = nn.LayerNorm(d)
        self.head = nn.Linear(d, 2 * t)
        self.apply(self._init_weights)

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
        if self.snr_embed is not None:
            if snr_db is None:
                raise ValueError("this estimator was built with snr_input=True: pass snr_db")
            s = self.snr_embed((snr_db.to(tok.dtype) / 10.0).view(b, 1, 1))
            x, memory = x + s, memory + s
        for layer in self.layers:
            x = layer(x, memory)
        out = self.head(self.ln_out(x))  # (B, n_tok, 2T): re then im per token
        out = out.view(b, self.cfg.n_tokens, 2, self.cfg.token_size).transpose(2, 3)
        h = torch.view_as_complex(out.reshape(b, self.cfg.n_subcarriers, 2).contiguous())
        return h * scale


def n_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
