"""A learned per-sample power-delay profile on a delay grid, and the LMMSE estimate it implies.

The genie LMMSE knows each sample's tap delays and powers. An estimator that sees only one slot of
noisy pilots can still guess them: the pilots' delay-domain matched filter (a periodogram on a
grid of delays) shows where the energy is, smeared by the Dirichlet kernel of the band and lifted
by a noise floor. :class:`DelayPrior` is a small 1-D convolutional network that reads that
periodogram (with the SNR) and outputs the shape of the prior over the grid delays (a softmax,
scaled by the channel power, which the RMS normalisation fixes); :class:`GridLMMSE` is
the LMMSE for independent taps on the grid with those powers, which is differentiable, so the
prior is trained end to end on the channel NMSE (a learned, one-shot form of sparse Bayesian
learning). See ``benchmarks/oracle_gaps.py`` for the same LMMSE told the true PDP.

Grid: ``G`` delays from ``-cell`` to ``max_delay_s + cell`` in steps of ``cell / oversample``,
where ``cell = 1 / (n_pilots * pilot_spacing * df)`` is the pilots' delay resolution (seconds).
Shapes: pilots ``y`` (B, n_p) complex64, noise variance ``s`` (B,) in the units of ``|y|^2``,
prior powers (B, G) linear, output (B, n_sc) complex64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chanest.channel.response import dirichlet_cross, dirichlet_gram, tap_correlate, tap_response


def delay_grid(pilot_indices: tuple[int, ...], spacing_hz: float, max_delay_s: float,
               oversample: float) -> Tensor:
    """(G,) float64 grid delays in seconds (see the module docstring)."""
    span_hz = (pilot_indices[-1] - pilot_indices[0] + (pilot_indices[1] - pilot_indices[0])
               if len(pilot_indices) > 1 else 1) * spacing_hz
    cell = 1.0 / span_hz
    step = cell / oversample
    n = int(math.ceil((max_delay_s + 2 * cell) / step)) + 1
    return -cell + step * torch.arange(n, dtype=torch.float64)


class _HermitianSolve(torch.autograd.Function):
    """``x = M^-1 r`` for Hermitian positive definite M, by Cholesky, with a cheap backward.

    Autograd through ``cholesky`` + ``cholesky_solve`` differentiates the factorisation with
    batched triangular solves on matrices, measured 20x slower than this on 2 CPU cores. For a
    linear solve the gradients are ``grad_r = M^-1 grad_x`` (M = M^H) and
    ``grad_M = -grad_r x^H``: one more solve with the saved factor and an outer product.
    """

    @staticmethod
    def forward(ctx, m: Tensor, r: Tensor) -> Tensor:
        factor = torch.linalg.cholesky(m)
        x = torch.cholesky_solve(r.unsqueeze(-1), factor)
        ctx.save_for_backward(factor, x)
        return x.squeeze(-1)

    @staticmethod
    def backward(ctx, grad_x: Tensor) -> tuple[Tensor, Tensor]:
        factor, x = ctx.saved_tensors
        grad_r = torch.cholesky_solve(grad_x.unsqueeze(-1), factor)
        return -grad_r @ x.mH, grad_r.squeeze(-1)


def hermitian_solve(m: Tensor, r: Tensor) -> Tensor:
    """Solve ``m x = r``: m (B, G, G) Hermitian positive definite, r (B, G). Returns (B, G)."""
    return _HermitianSolve.apply(m, r)


def _amplitude(power: Tensor) -> Tensor:
    """``sqrt(max(power, 0))`` with a zero derivative where ``power <= 0``.

    A softmax prior that underflows to exactly 0 at some delays (a peaked prior in float32) would
    otherwise meet sqrt's infinite derivative at 0 and give a non-finite gradient (0 * inf). The
    value is bit for bit ``power.clamp_min(0).sqrt()``; where power > 0 so is the gradient.
    """
    positive = power > 0
    return torch.where(positive, torch.where(positive, power, 1.0).sqrt(), 0.0)


class GridLMMSE(nn.Module):
    """LMMSE for taps ``a_g ~ CN(0, p_g)`` on fixed delays ``tau_g``, all in one batch.

    With ``V_p`` (n_p, G) the pilot steering matrix and ``D = diag(sqrt(p))``:
    ``a_hat = D M^-1 D V_p^H y / s``, ``M = I + D V_p^H V_p D / s`` (G x G, Hermitian, >= I, so
    its Cholesky factor exists), and ``H = V a_hat`` on every subcarrier. The Gram matrix
    ``V_p^H V_p`` is fixed by the grid and held as a buffer. M is built and solved in complex128:
    on an oversampled grid the Gram matrix is nearly singular and M's largest entries reach
    ``n_p * SNR``, so in complex64 rounding can make it indefinite (seen in training at 35 dB);
    the matched filter and the synthesis of H stay complex64.
    """

    def __init__(self, pilot_indices: tuple[int, ...], n_subcarriers: int, spacing_hz: float, tau: Tensor):
        super().__init__()
        k = torch.arange(n_subcarriers, dtype=torch.float64)
        p = torch.tensor(pilot_indices, dtype=torch.float64)
        v_p = torch.exp(-2j * math.pi * p[:, None] * spacing_hz * tau[None, :])  # (n_p, G)
        v = torch.exp(-2j * math.pi * k[:, None] * spacing_hz * tau[None, :])  # (n_sc, G)
        self.n_grid = int(tau.shape[0])
        self.spacing_hz = spacing_hz
        self.n_subcarriers = n_subcarriers
        self.register_buffer("v_p_conj", v_p.conj().to(torch.complex64), persistent=False)
        self.register_buffer("gram", v_p.conj().T @ v_p, persistent=False)  # complex128
        self.register_buffer("v_t", v.T.contiguous().to(torch.complex64), persistent=False)
        self.register_buffer("tau", tau.clone(), persistent=False)  # float64 seconds
        steps = set(torch.diff(p).tolist())
        self.pilot_step_hz = steps.pop() * spacing_hz if len(steps) == 1 else None  # a regular comb
        self.pilot_start_hz = float(p[0]) * spacing_hz

    def matched_filter(self, y: Tensor) -> Tensor:
        """``V_p^H y``: (B, n_p) -> (B, G) complex."""
        return y @ self.v_p_conj

    def forward(self, y: Tensor, noise_var: Tensor, power: Tensor, atoms: Tensor | None = None,
                atom_power: Tensor | None = None) -> Tensor:
        """y (B, n_p), noise_var (B,), power (B, G) prior variances -> (B, n_sc) complex64.

        ``atoms`` (B, K) float64 delays in seconds off the grid (from :mod:`chanest.estimators.nomp`)
        with prior variances ``atom_power`` (B, K; 0 on padding): the LMMSE is then over the
        grid and these atoms together (G + K taps; the cross terms of the Gram matrix from the
        pilots' steering vectors). Never under autocast: the solve is complex128 even inside a
        bf16 training step.
        """
        if atoms is not None and atoms.shape[-1] > 0:
            return self._with_atoms(y, noise_var, power, atoms, atom_power)
        with torch.autocast(y.device.type, enabled=False):
            d = _amplitude(power.double())  # (B, G) prior amplitudes
            s = noise_var.double()
            rhs = self.matched_filter(y.to(torch.complex64)).to(torch.complex128) * (d / s[:, None])
            if torch.is_grad_enabled():
                m = d[:, :, None] * self.gram * d[:, None, :] / s[:, None, None]
                m = m + torch.eye(self.n_grid, dtype=m.dtype, device=m.device)
                x = hermitian_solve(m, rhs)
            else:  # the same M built in place: 2 passes over (B, G, G) instead of 4, ~40% faster
                e = d / s.sqrt()[:, None]
                m = self.gram * e[:, :, None]
                m.mul_(e[:, None, :]).diagonal(dim1=-2, dim2=-1).add_(1.0)
                x = torch.cholesky_solve(rhs.unsqueeze(-1), torch.linalg.cholesky(m)).squeeze(-1)
            return ((d * x).to(torch.complex64)) @ self.v_t

    def _with_atoms(self, y: Tensor, noise_var: Tensor, power: Tensor, atoms: Tensor,
                    atom_power: Tensor) -> Tensor:
        """The LMMSE over the grid and per-sample atoms (see :meth:`forward`); the pilots must sit
        on a regular comb (the Gram blocks are Dirichlet kernels in closed form)."""
        if self.pilot_step_hz is None:
            raise ValueError("off-grid atoms need pilots on a regular comb")
        step, start, n_p = self.pilot_step_hz, self.pilot_start_hz, self.v_p_conj.shape[0]
        with torch.autocast(y.device.type, enabled=False):
            g, b = self.n_grid, y.shape[0]
            d = _amplitude(torch.cat([power, atom_power], dim=-1).double())  # (B, G + K)
            s = noise_var.double()
            y128 = y.to(torch.complex128)
            z = torch.cat([self.matched_filter(y.to(torch.complex64)).to(torch.complex128),
                           tap_correlate(atoms, y128, step, start)], dim=-1)  # [V_p, A_p]^H y
            cross = dirichlet_cross(self.tau, atoms, step, n_p, start)  # (B, G, K) = V_p^H A_p
            gram = torch.cat([torch.cat([self.gram.expand(b, -1, -1), cross], dim=-1),
                              torch.cat([cross.mH, dirichlet_gram(atoms, step, n_p, start)], dim=-1)], dim=-2)
            m = d[:, :, None] * gram * d[:, None, :] / s[:, None, None]
            m = m + torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
            rhs = z * (d / s[:, None])
            if torch.is_grad_enabled():
                x = hermitian_solve(m, rhs)
            else:
                x = torch.cholesky_solve(rhs.unsqueeze(-1), torch.linalg.cholesky(m)).squeeze(-1)
            taps = d * x
            h = taps[:, :g].to(torch.complex64) @ self.v_t
            off = tap_response(atoms, taps[:, g:], self.spacing_hz, self.n_subcarriers)
            return h + off.to(torch.complex64)


class DelayPrior(nn.Module):
    """Periodogram on the grid [+ SNR] -> logits of the prior over the grid delays, (B, G) float32.

    Features per grid delay: ``log10 |V_p^H y / n_p|^2``, the same over its noise floor
    ``s / n_p`` (scaled by 1/3), and ``SNR_dB / 10``; with ``residual_input``, the first two again
    for the residual the off-grid atoms leave (:class:`AtomPower`). Then a 1x1 convolution to ``channels``,
    ``n_blocks`` residual blocks (GELU, a global-average context added, a kernel-9 convolution
    with dilations 1, 2, 4, 8, 1, ...) and a 1x1 convolution to one output; with ``residual_input``
    a second output channel, averaged over the grid, is a logit ``c`` per sample that scales the
    grid's total prior by ``2 sigmoid(c)`` (it starts at zero, a scale of 1), so the network can
    switch the grid off where the atoms explain the pilots. Layer names (``delay_conv_in``,
    ``delay_conv1``..., ``delay_context``, ``delay_conv_out``) are stable for LoRA targeting.
    """

    DILATIONS = (1, 2, 4, 8, 1, 2, 4, 8)

    def __init__(self, n_pilots: int, channels: int = 32, n_blocks: int = 5, residual_input: bool = False):
        super().__init__()
        self.n_pilots, self.n_blocks = n_pilots, n_blocks
        self.delay_conv_in = nn.Conv1d(5 if residual_input else 3, channels, 1)
        for i in range(n_blocks):
            dil = self.DILATIONS[i % len(self.DILATIONS)]
            setattr(self, f"delay_conv{i + 1}", nn.Conv1d(channels, channels, 9, padding=4 * dil, dilation=dil))
        self.delay_context = nn.Linear(channels, channels)
        self.delay_conv_out = nn.Conv1d(channels, 2 if residual_input else 1, 1)
        if residual_input:  # the gate starts at zero (see the class)
            with torch.no_grad():
                self.delay_conv_out.weight[1].zero_()
                self.delay_conv_out.bias[1].zero_()

    def forward(self, z: Tensor, noise_var: Tensor, snr_db: Tensor, z_res: Tensor | None = None) -> Tensor:
        """z: (B, G) matched filter ``V_p^H y``; noise_var: (B,) of y; snr_db: (B,); z_res (B, G):
        the matched filter of what the off-grid atoms leave (``residual_input`` only).

        Returns the logits (B, G), and with ``residual_input`` also the gate logit (B,)."""
        floor = (noise_var / self.n_pilots)[:, None]  # the noise floor of the periodogram

        def periodogram(x: Tensor) -> list[Tensor]:
            per = x.abs().pow(2) / self.n_pilots**2
            return [torch.log10(per + 1e-6), torch.log10(per / floor + 1e-6) / 3]

        snr = (snr_db.float() / 10)[:, None].expand(z.shape)
        parts = periodogram(z) + [snr] + (periodogram(z_res) if z_res is not None else [])
        feats = torch.stack(parts, dim=1).float()
        x = self.delay_conv_in(feats)
        for i in range(self.n_blocks):
            context = self.delay_context(x.mean(-1)).unsqueeze(-1)
            x = x + getattr(self, f"delay_conv{i + 1}")(F.gelu(x + context))
        out = self.delay_conv_out(F.gelu(x))
        if z_res is None:
            return out.squeeze(1)
        return out[:, 0], out[:, 1].mean(-1)


class AtomPower(nn.Module):
    """Prior variances of off-grid atoms from their least-squares gains: ``p = |g|^2 2 sigmoid(f)``.

    ``f`` is a small MLP (``offgrid_power_in``, ``offgrid_power_out``: LoRA-addressable) of what
    tells a tap from a false alarm or a split one, per atom: its SNR ``log10(|g|^2 n_p / s) / 3``,
    the sample's ``SNR_dB / 10``, its power relative to the sample's strongest atom
    (``log10(|g|^2 / max |g|^2) / 3``), its delay from that atom and its distance to the nearest
    other atom (in delay-resolution cells ``cell_s``, as ``log1p`` / 3, the first signed). It
    starts at zero, so the prior starts as the plug-in ``|g|^2``. Padding (``g = 0``) gets 0.
    """

    N_FEATURES = 5

    def __init__(self, n_pilots: int, cell_s: float, hidden: int = 16):
        super().__init__()
        self.n_pilots, self.cell_s = n_pilots, cell_s
        self.offgrid_power_in = nn.Linear(self.N_FEATURES, hidden)
        self.offgrid_power_out = nn.Linear(hidden, 1)
        nn.init.zeros_(self.offgrid_power_out.weight)
        nn.init.zeros_(self.offgrid_power_out.bias)

    def features(self, gains: Tensor, atoms: Tensor, noise_var: Tensor, snr_db: Tensor) -> Tensor:
        """(B, K, 5) float32 features of atoms (B, K) s with gains (B, K) (see the class)."""
        g2 = gains.abs().pow(2).double()
        if g2.shape[-1] == 0:  # no atom in the batch
            return g2.new_zeros(*g2.shape, self.N_FEATURES).float()
        on = g2 > 0
        strongest = g2.argmax(-1, keepdim=True)
        cells = atoms.double() / self.cell_s
        offset = cells - cells.gather(-1, strongest)
        apart = (cells[:, :, None] - cells[:, None, :]).abs()
        apart = apart.masked_fill(~(on[:, :, None] & on[:, None, :]), math.inf)
        apart = apart.masked_fill(torch.eye(g2.shape[-1], dtype=torch.bool, device=g2.device), math.inf)
        nearest = apart.min(-1).values.clamp_max(1e3)  # a lone atom: 1e3 cells
        return torch.stack([
            torch.log10(g2 * self.n_pilots / noise_var.double()[:, None] + 1e-6) / 3,
            (snr_db.double() / 10)[:, None].expand_as(g2),
            torch.log10(g2 / g2.gather(-1, strongest).clamp_min(1e-30) + 1e-6) / 3,
            offset.sign() * torch.log1p(offset.abs()) / 3,
            torch.log1p(nearest) / 3,
        ], dim=-1).float()

    def forward(self, gains: Tensor, atoms: Tensor, noise_var: Tensor, snr_db: Tensor) -> Tensor:
        """gains (B, K) complex, atoms (B, K) delays s, noise_var (B,), snr_db (B,) -> (B, K)
        float64 prior variances."""
        feats = self.features(gains, atoms, noise_var, snr_db)
        f = self.offgrid_power_out(F.gelu(self.offgrid_power_in(feats))).squeeze(-1)
        return gains.abs().pow(2).double() * 2 * torch.sigmoid(f.double())


class CompanionPower(nn.Module):
    """Companion atoms: taps the front-end did not detect, at fixed offsets from the strongest atom.

    Many channels put a weaker tap a fixed distance from their strongest one (a ground reflection,
    a cluster's next sub-path: on the research's NYUSIM files, 97% of the urban LOS profiles and
    every RMa LOS profile hold one 0.85-1.15 delay-resolution cells after it). Below the
    front-end's stopping rule such a tap is lost: searched for over the whole delay window, its
    peak is no higher than the noise's largest. At a delay known in advance there is no search,
    so its least-squares gain ``z = a(tau)^H r / n_p`` on the residual ``r`` the atoms leave is
    evidence enough for an LMMSE. Each sample gets one companion per offset in ``offsets_cells``
    (delay-resolution cells ``cell_s``, signed) from its strongest atom, with the prior variance
    ``p = |z|^2 2 sigmoid(f)``: ``f`` a small MLP (``offgrid_companion_in``,
    ``offgrid_companion_out``: LoRA-addressable) of the evidence's SNR
    ``log10(|z|^2 n_p / s) / 3``, the sample's ``SNR_dB / 10``, the strongest atom's SNR, the
    offset (cells / 3) and the distance from the companion to the nearest other atom (cells, as
    ``log1p`` / 3). It starts at zero (the plug-in prior ``|z|^2``); a sample with no atom gets 0.
    """

    N_FEATURES = 5

    def __init__(self, n_pilots: int, cell_s: float, offsets_cells: tuple[float, ...], step_hz: float,
                 start_hz: float, hidden: int = 16):
        super().__init__()
        self.n_pilots, self.cell_s, self.step_hz, self.start_hz = n_pilots, cell_s, step_hz, start_hz
        self.register_buffer("offsets", torch.tensor(offsets_cells, dtype=torch.float64), persistent=False)
        self.offgrid_companion_in = nn.Linear(self.N_FEATURES, hidden)
        self.offgrid_companion_out = nn.Linear(hidden, 1)
        nn.init.zeros_(self.offgrid_companion_out.weight)
        nn.init.zeros_(self.offgrid_companion_out.bias)

    def place(self, atoms: Tensor, gains: Tensor, rest: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Companion delays (B, C) s, their least-squares gains (B, C) complex128 on the residual
        ``rest`` (B, n_p) at the pilots, and the index (B, 1) of each sample's strongest atom."""
        strongest = gains.abs().argmax(-1, keepdim=True)
        delays = atoms.gather(-1, strongest) + self.offsets * self.cell_s
        z = tap_correlate(delays, rest.to(torch.complex128), self.step_hz, self.start_hz) / self.n_pilots
        return delays, z, strongest

    def forward(self, atoms: Tensor, gains: Tensor, rest: Tensor, noise_var: Tensor,
                snr_db: Tensor) -> tuple[Tensor, Tensor]:
        """atoms (B, K) s and gains (B, K) of the front-end (0 on padding, K >= 1), rest (B, n_p)
        the residual they leave at the pilots, noise_var (B,), snr_db (B,) -> companion delays
        (B, C) float64 s and prior variances (B, C) float64."""
        delays, z, strongest = self.place(atoms, gains, rest)
        s = noise_var.double()[:, None]
        g0 = gains.gather(-1, strongest).abs().pow(2)  # (B, 1)
        others = (gains.abs() > 0).scatter(-1, strongest, False)  # every atom but the strongest
        apart = (delays[:, :, None] - atoms[:, None, :]).abs() / self.cell_s  # (B, C, K)
        nearest = apart.masked_fill(~others[:, None, :], math.inf).amin(-1).clamp_max(1e3)
        evidence = z.abs().pow(2)
        feats = torch.stack([
            torch.log10(evidence * self.n_pilots / s + 1e-6) / 3,
            (snr_db.double() / 10)[:, None].expand_as(evidence),
            torch.log10(g0 * self.n_pilots / s + 1e-6).expand_as(evidence) / 3,
            (self.offsets / 3).expand_as(evidence),
            torch.log1p(nearest) / 3,
        ], dim=-1).float()
        f = self.offgrid_companion_out(F.gelu(self.offgrid_companion_in(feats))).squeeze(-1)
        return delays, evidence * 2 * torch.sigmoid(f.double()) * (g0 > 0)
