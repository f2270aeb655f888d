"""Synthetic PDP sets and the per-sample synthesis reference (the research code's approach).

Both serve the tests and the benchmark: :func:`exponential_pdp_set` makes PDPs without any file,
:func:`reference_synthesis_numpy` is the slow, obviously-correct loop the batched sampler is
checked and timed against.
"""

from __future__ import annotations


import numpy as np

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import PDP, PDPSet

# --------------------------------------------------------------------------------------------
# Synthetic PDPs (tests, benchmarks, a fallback when no real PDP files are around)
# --------------------------------------------------------------------------------------------


def exponential_pdp_set(
    n: int,
    n_taps: int,
    rms_delay_s: float | tuple[float, float],
    rng: np.random.Generator,
    k_factor: float = 0.0,
    scenario: str = "synthetic",
) -> PDPSet:
    """``n`` exponential PDPs of ``n_taps`` taps each, every one normalised to unit sum.

    Per PDP a decay constant ``ds`` (seconds; fixed, or uniform in a ``(lo, hi)`` range), a first
    tap at 0 and the others at sorted ``U[0, 5 ds)`` delays, powers ``exp(-tau / ds)``.
    """
    lo, hi = rms_delay_s if isinstance(rms_delay_s, tuple) else (rms_delay_s, rms_delay_s)
    ds = rng.uniform(lo, hi, size=(n, 1))
    delays = np.sort(rng.uniform(0.0, 5.0, size=(n, n_taps)), axis=1) * ds
    delays[:, 0] = 0.0
    powers = np.exp(-delays / ds)
    pdps = [
        PDP(delays[i], powers[i] / powers[i].sum(), float(k_factor)) for i in range(n)
    ]
    return PDPSet.from_pdps(scenario, pdps)


# --------------------------------------------------------------------------------------------
# The per-sample reference (the research code's approach), for the benchmark and tests
# --------------------------------------------------------------------------------------------


def reference_synthesis_numpy(
    pdp: PDP | PDPSet,
    ofdm: OFDMConfig,
    snr_db: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One realisation the way the research code made it: slow, per sample, numpy.

    Picks a PDP uniformly if given a :class:`PDPSet`; adds a common delay offset
    ``U[0, ofdm.max_delay_offset_s)``; draws the tap gains (as :class:`ChannelSampler`); builds
    the time-domain impulse response on the ``fft_size`` grid (sample period
    ``1 / (fft_size * df)``) by sinc interpolation of each tap in turn onto samples
    ``0 .. fft_size-1`` (so, as in the research code, the sinc's tails outside that window are
    cut: the response is approximate, unlike :class:`ChannelSampler`'s); FFTs to ``fft_size``
    bins; keeps ``n_subcarriers`` bins centred on DC (a fixed frequency shift of the ``k * df``
    grid, i.e. one phase per tap, which leaves the statistics unchanged); normalises
    ``mean |H|^2 = 1``; adds noise at the pilots.

    Returns ``(h, h_ls, noise_var)``: (n_sc,) complex128, (n_pilots,) complex128, float.
    """
    if isinstance(pdp, PDPSet):
        pdp = pdp.pdp(int(rng.integers(len(pdp))))
    n_fft, df = ofdm.fft_size, ofdm.subcarrier_spacing_hz
    powers = pdp.powers / pdp.powers.sum()
    delays = pdp.delays_s + rng.uniform(0.0, ofdm.max_delay_offset_s)
    gains = np.sqrt(powers / 2.0) * (
        rng.standard_normal(pdp.n_taps) + 1j * rng.standard_normal(pdp.n_taps)
    )
    if pdp.k_factor > 0:
        specular = pdp.k_factor / (pdp.k_factor + 1.0)
        diffuse = np.sqrt(max(powers[0] - specular, 0.0) / 2.0)
        gains[0] = np.sqrt(specular) * np.exp(2j * np.pi * rng.uniform()) + diffuse * (
            rng.standard_normal() + 1j * rng.standard_normal()
        )
    sample_period = 1.0 / (n_fft * df)
    n = np.arange(n_fft)
    impulse = np.zeros(n_fft, dtype=np.complex128)
    for gain, tau in zip(gains, delays):
        impulse += gain * np.sinc(n - tau / sample_period)
    spectrum = np.fft.fft(impulse)
    h = spectrum[(np.arange(ofdm.n_subcarriers) - ofdm.n_subcarriers // 2) % n_fft]
    h = h / np.sqrt(np.mean(np.abs(h) ** 2))
    noise_var = 10.0 ** (-snr_db / 10.0)
    n_p = ofdm.n_pilots
    noise = np.sqrt(noise_var / 2.0) * (rng.standard_normal(n_p) + 1j * rng.standard_normal(n_p))
    return h, h[ofdm.pilot_indices] + noise, noise_var
