"""Newtonized orthogonal matching pursuit (NOMP): the training-free off-grid sparse estimator.

Mamandipoor, Ramasamy and Madhow, "Newtonized Orthogonal Matching Pursuit: Frequency Estimation
over the Continuum", IEEE Trans. Signal Processing 64(19), 2016 (arXiv 1509.01942). The channel
at the pilots is modelled as a few taps, ``y_i = sum_l g_l exp(-j 2 pi f_i tau_l) + noise``, with
delays on the continuum. Per sample, starting from the residual ``r = y``:

1. **Detect** the strongest tap on a grid ``oversample`` times finer than the pilots' delay
   resolution (an FFT of the residual, since the pilots sit on a regular comb), inside the delay
   window where taps can be (``[-cell, cp + max offset + cell]``, ``cell`` the resolution);
   **stop** when its statistic ``|a(tau)^H r|^2 / N`` falls below the false-alarm threshold
   ``s (log N - log(-log(1 - p_fa)))`` for noise variance ``s`` (known) and ``N`` pilots.
2. **Refine** its delay with ``newton_steps`` Newton steps on ``||r - g a(tau)||^2`` (``g`` the
   matched gain), then **cyclically refine** every tap found so far (``cyclic_rounds`` passes,
   each tap with the others removed from the residual).
3. **Re-fit** all gains by least squares and update the residual.

When the stopping rule fires, ``final_rounds`` more cyclic passes over the taps found and a last
re-fit (the reference implementation's closing refinement). The estimate is ``H[k] = sum_l g_l exp(-j 2 pi f_k tau_l)`` on every subcarrier.

Faithful to the paper's algorithm; two guards keep one sample from dominating a mean NMSE: a Newton
step is taken only where the objective is locally concave, is at most one detection-grid step, and
is kept only if it lowers the residual (the reference code takes a random step instead where the
objective is not concave); and the least-squares re-fit carries a ridge of the noise variance
(negligible against ``A^H A ~ N`` for resolvable taps, it bounds the gains of two delays that
converge). Everything is batched over samples in complex128: the loop is over taps, not samples.
Each sample is fitted as if it were alone: once its stopping rule fires, nothing more is done to it
while the others of its batch go on detecting, so an estimate never depends on its batch-mates.

Units: delays in seconds inside the public API; internally a delay is ``u = tau * pilot_step_hz``
(cycles per pilot step, ``u`` in [0, 1) is unambiguous). Shapes: pilots (B, N) complex, noise
variance (B,), output (B, n_sc) of the pilots' complex dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.response import tap_response
from chanest.utils.params import COUNT, Range, from_section, get


@dataclass(frozen=True)
class NOMPConfig:
    """NOMP's settings (``nomp:`` in the params files; the paper's defaults).

    oversample:    detection-grid points per pilot delay resolution cell (the paper: 4).
    newton_steps:  Newton steps per refinement of one tap (the paper's R_s: 1).
    cyclic_rounds: passes of cyclic refinement over all taps after each detection (R_c: 3).
    p_fa:          false-alarm probability of the stopping rule (per sample, noise only).
    max_taps:      most taps per sample (a cap for dense channels; the rule usually stops first).
    final_rounds:  cyclic passes over all taps once a sample's detection stops (0: none).
    """

    oversample: int = 4
    newton_steps: int = 1
    cyclic_rounds: int = 3
    p_fa: float = 1e-2
    max_taps: int = 64
    final_rounds: int = 0

    RANGES: ClassVar[dict[str, Range]] = {
        "oversample": COUNT, "newton_steps": COUNT, "cyclic_rounds": COUNT, "max_taps": COUNT,
        "final_rounds": Range(0.0), "p_fa": Range(0.0, 1.0, low_open=True, high_open=True),
    }


def nomp_config(params: dict) -> NOMPConfig:
    """The ``nomp`` params section as a :class:`NOMPConfig`."""
    return from_section(NOMPConfig, get(params, "nomp"), "nomp")


class NOMP:
    """NOMP for one numerology: ``NOMP(ofdm, cfg)(h_ls, noise_var) -> (B, n_sc)``."""

    def __init__(self, ofdm: OFDMConfig, cfg: NOMPConfig = NOMPConfig(),
                 later_rounds: tuple[int, int] | None = None):
        """``later_rounds = (k, r)``: after the first ``k`` detections only ``r`` cyclic passes
        (a cost cap for dense channels, see :func:`chanest.estimators.model.offgrid_front_end`);
        None, the paper's: ``cfg.cyclic_rounds`` after every detection."""
        self.ofdm, self.cfg, self.later_rounds = ofdm, cfg, later_rounds
        self.n = ofdm.n_pilots
        self.step_hz = ofdm.pilot_spacing * ofdm.subcarrier_spacing_hz  # pilot step, Hz
        self.cell_s = cell = 1.0 / (self.n * self.step_hz)  # delay resolution of the pilots, s
        self.n_grid = cfg.oversample * self.n
        lo = max(-cell, -0.5 / self.step_hz)
        hi = min(ofdm.cp_s + ofdm.max_delay_offset_s + cell, 0.5 / self.step_hz)
        m = torch.arange(self.n_grid, dtype=torch.float64)
        u = m / self.n_grid
        u = torch.where(u >= 0.5, u - 1.0, u)  # grid delays in [-1/2, 1/2) pilot steps
        self._window = (u >= lo * self.step_hz) & (u <= hi * self.step_hz)
        self._grid_u = u
        # pilot i sits at (pilot_offset + i * pilot_spacing) subcarriers = n_i pilot steps
        self._n_i = (ofdm.pilot_offset / ofdm.pilot_spacing + torch.arange(self.n, dtype=torch.float64))

    def threshold(self, noise_var: Tensor) -> Tensor:
        """(B,) stopping threshold on ``|a^H r|^2 / N`` for noise variance (B,)."""
        return noise_var * (math.log(self.n) - math.log(-math.log1p(-self.cfg.p_fa)))

    def __call__(self, h_ls: Tensor, noise_var: Tensor | float) -> Tensor:
        delays, gains = self.fit(h_ls, noise_var)
        h = tap_response(delays, gains, self.ofdm.subcarrier_spacing_hz, self.ofdm.n_subcarriers)
        return h.to(h_ls.dtype)

    def fit(self, h_ls: Tensor, noise_var: Tensor | float) -> tuple[Tensor, Tensor]:
        """Taps of each sample: delays (B, K) float64 seconds and gains (B, K) complex128, in the
        order found (0 on the padding); ``K <= max_taps`` is the most any sample found."""
        y = h_ls.to(torch.complex128)
        b, dev = y.shape[0], y.device
        if y.shape[-1] != self.n:
            raise ValueError(f"h_ls: expected {self.n} pilots, got shape {tuple(y.shape)}")
        s = torch.as_tensor(noise_var, dtype=torch.float64, device=dev).expand(b).clone()
        thr = self.threshold(s)
        n_i, grid_u, window = self._n_i.to(dev), self._grid_u.to(dev), self._window.to(dev)
        k_max = self.cfg.max_taps
        u = torch.zeros(b, k_max, dtype=torch.float64, device=dev)
        g = torch.zeros(b, k_max, dtype=torch.complex128, device=dev)
        a = torch.zeros(b, k_max, self.n, dtype=torch.complex128, device=dev)  # steering vectors
        on = torch.zeros(b, k_max, dtype=torch.bool, device=dev)  # taps found
        active = torch.ones(b, dtype=torch.bool, device=dev)  # samples still detecting
        # d^0, d^1, d^2 of the phase of a(u) per pilot, for the Newton steps: a^H r weighted by them
        w = torch.stack([torch.ones_like(n_i), 2 * math.pi * n_i, (2 * math.pi * n_i) ** 2], -1)
        w = w.to(torch.complex128)
        r = y.clone()
        for k in range(k_max):
            # 1. detection on the oversampled grid: a(u_m)^H r = n_grid * ifft(r)[m] times a phase
            spec = torch.fft.ifft(r, n=self.n_grid).abs().pow(2) * (self.n_grid**2 / self.n)
            spec = torch.where(window, spec, -1.0)
            peak, m = spec.max(dim=-1)
            stops = active & (peak <= thr)
            if k and self.cfg.final_rounds and bool(stops.any()):  # the rule fired: these samples' closing passes
                self._cycle(stops, k, self.cfg.final_rounds, y, u, g, a, on, s, n_i, w)
            active &= ~stops
            if not bool(active.any()):
                break
            on[:, k] = active
            # 2. refine the new tap, then cyclically every tap so far (the samples still detecting)
            i = active.nonzero().squeeze(-1)
            u_k = grid_u[m[i]]
            u_k, g_k, a_k = self._refine(r[i], u_k, _steer(u_k, n_i), on[i, k], n_i, w)
            u[i, k], g[i, k], a[i, k] = u_k, g_k, a_k
            # 3. (in _cycle) least-squares re-fit of all gains, and the new residual
            r[i] = self._cycle(active, k + 1, self._rounds(k), y, u, g, a, on, s, n_i, w)
        if self.cfg.final_rounds and bool(active.any()):  # samples that reached max_taps: their closing passes too
            self._cycle(active, k_max, self.cfg.final_rounds, y, u, g, a, on, s, n_i, w)
        used = int(on.sum(-1).max()) if b else 0  # taps are found in order: trim the padding
        return u[:, :used] / self.step_hz, g[:, :used]

    def _rounds(self, k: int) -> int:
        """Cyclic passes after detection ``k`` (0-based)."""
        if self.later_rounds is not None and k >= self.later_rounds[0]:
            return self.later_rounds[1]
        return self.cfg.cyclic_rounds

    # ----------------------------------------------------------------------------------------

    def _cycle(self, rows: Tensor, n_taps: int, rounds: int, y: Tensor, u: Tensor, g: Tensor,
               a: Tensor, on: Tensor, s: Tensor, n_i: Tensor, w: Tensor) -> Tensor:
        """``rounds`` cyclic passes over the first ``n_taps`` taps of the samples ``rows`` (B,)
        bool, each tap refined against the residual without it, then the least-squares re-fit of
        their gains. Updates u, g, a in place; returns those samples' residual (R, N)."""
        i = rows.nonzero().squeeze(-1)
        yi, ui, gi, ai, oni = y[i], u[i, :n_taps], g[i, :n_taps], a[i, :n_taps], on[i, :n_taps]
        r = yi - torch.einsum("bk,bkn->bn", gi, ai)
        for _ in range(rounds):
            for j in range(n_taps):
                r_j = r + gi[:, j, None] * ai[:, j]
                ui[:, j], gi[:, j], ai[:, j] = self._refine(r_j, ui[:, j], ai[:, j], oni[:, j], n_i, w)
                r = r_j - gi[:, j, None] * ai[:, j]
        gi = self._refit(yi, ai, oni, s[i])
        u[i, :n_taps], g[i, :n_taps], a[i, :n_taps] = ui, gi, ai
        return yi - torch.einsum("bk,bkn->bn", gi, ai)

    def _refine(self, r: Tensor, u: Tensor, a: Tensor, sel: Tensor, n_i: Tensor,
                w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``newton_steps`` guarded Newton steps on ``J(u) = |a(u)^H r|^2`` for one tap per sample
        (the residual power the tap removes with its least-squares gain: the paper's objective).

        r (B, N) the residual with this tap in it; u (B,) its delay, a (B, N) its steering vector;
        only samples ``sel`` move. Returns the new (u, g, a), g the matched gain ``a^H r / N``
        (0 where not ``sel``). ``w``: (N, 3) the phase derivatives' powers (see :meth:`fit`).
        """
        max_step = 1.0 / self.n_grid
        for _ in range(self.cfg.newton_steps):
            # a^H r, (da/du)^H r and (d2a/du2)^H r in one product: da/du = -j w1 a, d2a = -w2 a
            c = (a.conj() * r) @ w
            c0, c1, c2 = c[:, 0], 1j * c[:, 1], -c[:, 2]
            j0 = c0.abs().pow(2)
            d1 = 2 * (c0.conj() * c1).real
            d2 = 2 * c1.abs().pow(2) + 2 * (c0.conj() * c2).real
            step = -d1 / torch.where(d2 < 0, d2, -1.0)
            ok = sel & (d2 < 0) & (step.abs() <= max_step)
            u_try = torch.where(ok, u + step, u)
            a_try = _steer(u_try, n_i)
            better = ok & ((a_try.conj() * r).sum(-1).abs().pow(2) >= j0)
            u = torch.where(better, u_try, u)
            a = torch.where(better[:, None], a_try, a)
        g = torch.where(sel, (a.conj() * r).sum(-1) / self.n, 0)
        return u, g, a

    def _refit(self, y: Tensor, a: Tensor, on: Tensor, s: Tensor) -> Tensor:
        """(B, K) ridge-guarded least-squares gains of the taps ``on`` (0 elsewhere); a (B, K, N)."""
        a = a * on[..., None]  # rows of absent taps zero
        gram = a.conj() @ a.transpose(1, 2)  # (B, K, K) = A^H A with A = a^T
        ridge = torch.where(on, s[:, None], 1.0).to(gram.dtype)
        gram = gram + torch.diag_embed(ridge)
        rhs = (a.conj() @ y.unsqueeze(-1)).squeeze(-1)
        return torch.linalg.solve(gram, rhs) * on


def _steer(u: Tensor, n_i: Tensor) -> Tensor:
    """Pilot steering vectors ``exp(-j 2 pi n_i u)``: u (...,) -> (..., N) complex128."""
    phase = -2 * math.pi * torch.remainder(u[..., None] * n_i, 1.0)
    return torch.polar(torch.ones_like(phase), phase)
