"""OFDM numerology and the DMRS pilot pattern of one slot.

Subcarrier ``k`` (0 <= k < n_subcarriers) sits at baseband frequency ``k * subcarrier_spacing_hz``
(the phase reference is irrelevant: tap phases are uniform). Pilots are one DMRS symbol with a
comb: subcarriers ``pilot_offset, pilot_offset + pilot_spacing, ...``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np

from chanest.utils.params import COUNT, NON_NEGATIVE, POSITIVE, Range


@dataclass(frozen=True)
class OFDMConfig:
    """Numerology. Frequencies in Hz, times in seconds.

    subcarrier_spacing_hz: e.g. 30e3.
    n_subcarriers:         used subcarriers (624 = 52 RB at 30 kHz).
    fft_size:              FFT size (only for the time grid of the per-sample reference).
    n_symbols:             OFDM symbols per slot (14).
    cp_s:                  cyclic prefix length, seconds; taps beyond it are dropped.
    dmrs_symbol:           index of the DMRS symbol in the slot.
    pilot_spacing:         comb spacing of the pilots, in subcarriers.
    pilot_offset:          first pilot subcarrier.
    delay_offset_max_cp:   common delay offset per realisation ~ U[0, this * cp_s).
    """

    subcarrier_spacing_hz: float = 30e3
    n_subcarriers: int = 624
    fft_size: int = 1024
    n_symbols: int = 14
    cp_s: float = 2.34e-6
    dmrs_symbol: int = 2
    pilot_spacing: int = 2
    pilot_offset: int = 0
    delay_offset_max_cp: float = 0.2

    RANGES: ClassVar[dict[str, Range]] = {
        "subcarrier_spacing_hz": POSITIVE, "n_subcarriers": COUNT, "fft_size": COUNT, "n_symbols": COUNT,
        "cp_s": NON_NEGATIVE, "dmrs_symbol": NON_NEGATIVE, "pilot_spacing": COUNT, "pilot_offset": NON_NEGATIVE,
        "delay_offset_max_cp": NON_NEGATIVE,
    }

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind = int if f.type in ("int", int) else float
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"ofdm.{f.name}: expected a number, got {value!r}")
            if kind is int and not float(value).is_integer():
                raise TypeError(f"ofdm.{f.name}: expected an integer, got {value!r}")
            object.__setattr__(self, f.name, kind(value))
        if not 0 <= self.pilot_offset < self.pilot_spacing <= self.n_subcarriers:
            raise ValueError("ofdm: need 0 <= pilot_offset < pilot_spacing <= n_subcarriers")
        if self.fft_size < self.n_subcarriers:
            raise ValueError("ofdm.fft_size must be >= n_subcarriers")
        if not 0 <= self.dmrs_symbol < self.n_symbols:
            raise ValueError("ofdm.dmrs_symbol must lie in [0, n_symbols)")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def pilot_indices(self) -> np.ndarray:
        """(n_pilots,) int64 subcarrier indices of the pilots."""
        return np.arange(self.pilot_offset, self.n_subcarriers, self.pilot_spacing)

    @property
    def n_pilots(self) -> int:
        return int(self.pilot_indices.shape[0])

    @property
    def max_delay_offset_s(self) -> float:
        return self.delay_offset_max_cp * self.cp_s

    def subcarrier_freqs_hz(self) -> np.ndarray:
        """(n_subcarriers,) float64 baseband frequency of each used subcarrier, Hz."""
        return np.arange(self.n_subcarriers) * self.subcarrier_spacing_hz
