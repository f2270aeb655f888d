"""Shared fixtures: repository paths, the real NYUSIM PDP files, small PDP sets and numerology."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chanest.ofdm import OFDMConfig
from chanest.pdp import PDP, PDPSet

REPO = Path(__file__).resolve().parents[1]
SHARED_PDP = REPO.parent / "shared" / "pdp-nyusim-28ghz"


@pytest.fixture(scope="session")
def shared_pdp_dir() -> Path:
    if not SHARED_PDP.is_dir():
        pytest.skip(f"{SHARED_PDP} not present (the real PDP files live beside the repository)")
    return SHARED_PDP


def exponential_pdps(n: int, seed: int, scenario: str = "UMa_Nlos", ds_ns: float = 100.0) -> PDPSet:
    """``n`` random PDPs with ~20 taps and an exponential power profile (delay spread ~ds_ns)."""
    rng = np.random.default_rng(seed)
    pdps = []
    for _ in range(n):
        taps = int(rng.integers(5, 21))
        delays = np.sort(np.concatenate([[0.0], rng.exponential(ds_ns * 1e-9, taps - 1)]))
        powers = np.exp(-delays / (ds_ns * 1e-9)) * rng.uniform(0.5, 1.0, taps)
        pdps.append(PDP(delays, powers / powers.sum()))
    return PDPSet.from_pdps(scenario, pdps)


@pytest.fixture(scope="session")
def small_ofdm() -> OFDMConfig:
    """48 subcarriers at 30 kHz, comb-2 pilots: fast enough for training tests."""
    return OFDMConfig(n_subcarriers=48, fft_size=64)
