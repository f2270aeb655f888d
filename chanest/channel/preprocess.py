"""Validate, normalise, de-duplicate and split the PDPs of each scenario.

The split is by PDP and keyed on its content: every PDP gets a seeded pseudo-random number
``u`` in [0, 1) from a hash of (seed, its normalised taps), and lands in train / val / test by
comparing ``u`` with the cumulative split fractions. So the same PDP always lands in the same split,
also when it appears in two scenarios (the NYUSIM UMi_Los file repeats UMa_Los): no test PDP of one
scenario can be a training PDP of another. Sizes follow the fractions up to binomial noise.

Processed files (``data/processed/<Scenario>.npz``, read back with :func:`load_processed`):
``delays_s`` (n, max_taps) float64 s, ``powers`` (n, max_taps) float64 summing to 1 per row,
``k_factor`` (n,), ``n_taps`` (n,) int64, ``split`` (n,) int8 (0 train, 1 val, 2 test),
``source_index`` (n,) int64 (index of the PDP in the raw file).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chanest.utils.io import write_npz
from chanest.channel.pdp import PDP, PDPError, PDPSet, check_scenario
from chanest.errors import MissingInputError
from chanest.utils.params import from_section, get

SPLITS = ("train", "val", "test")
#: The folders of ``data/processed``: the base trains on ``sources``, each adapter on one of ``targets``.
GROUPS = ("sources", "targets")


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of PDPs per split (must sum to 1)."""

    train: float = 0.8
    val: float = 0.1
    test: float = 0.1

    def __post_init__(self) -> None:
        fr = (self.train, self.val, self.test)
        if min(fr) < 0 or abs(sum(fr) - 1.0) > 1e-9:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fr}")


def split_config(params: dict) -> SplitConfig:
    """The ``preprocess.split`` params section as a :class:`SplitConfig`."""
    return from_section(SplitConfig, get(params, "preprocess.split"), "preprocess.split")


@dataclass
class Processed:
    """One scenario after preprocessing, plus the counts that went into its report."""

    pdps: PDPSet  # normalised, first tap at delay 0
    split: np.ndarray  # (n,) int8
    source_index: np.ndarray  # (n,) int64
    n_raw: int
    n_duplicates: int
    n_taps_beyond_cp: int


def normalise(pdp: PDP, cp_s: float) -> tuple[PDP, int]:
    """First tap moved to delay 0, taps beyond the CP dropped, powers summing to 1.

    Returns the PDP and the number of taps dropped.
    """
    delays = pdp.delays_s - pdp.delays_s[0]
    keep = delays <= cp_s
    powers = pdp.powers[keep]
    return PDP(delays[keep], powers / powers.sum(), pdp.k_factor), int((~keep).sum())


def content_key(pdp: PDP) -> bytes:
    """A hash of a normalised PDP's taps, insensitive to float round-off in the normalisation."""
    delays_ns = np.round(pdp.delays_s * 1e9, 4)
    log_p = np.round(np.log10(pdp.powers), 6)
    data = delays_ns.tobytes() + log_p.tobytes() + np.float64(round(pdp.k_factor, 6)).tobytes()
    return hashlib.sha256(data).digest()


def assign_split(key: bytes, seed: int, cfg: SplitConfig) -> int:
    """Split index (0 train, 1 val, 2 test) of a PDP from its content key and the seed."""
    digest = hashlib.sha256(seed.to_bytes(8, "little", signed=True) + key).digest()
    u = int.from_bytes(digest[:8], "little") / 2.0**64
    return 0 if u < cfg.train else (1 if u < cfg.train + cfg.val else 2)


def preprocess(
    scenario: str, pdps: list[PDP], cp_s: float, cfg: SplitConfig, seed: int
) -> Processed:
    """Normalise, de-duplicate (exact, after normalisation) and split one scenario's PDPs."""
    check_scenario(scenario)
    seen: set[bytes] = set()
    kept, split, index = [], [], []
    dropped_taps = 0
    for i, raw in enumerate(pdps):
        pdp, dropped = normalise(raw, cp_s)
        dropped_taps += dropped
        key = content_key(pdp)
        if key in seen:
            continue
        seen.add(key)
        kept.append(pdp)
        split.append(assign_split(key, seed, cfg))
        index.append(i)
    if not kept:
        raise PDPError(f"{scenario}: no PDPs left after preprocessing")
    return Processed(
        PDPSet.from_pdps(scenario, kept),
        np.array(split, dtype=np.int8),
        np.array(index, dtype=np.int64),
        n_raw=len(pdps),
        n_duplicates=len(pdps) - len(kept),
        n_taps_beyond_cp=dropped_taps,
    )


def save_processed(path: str | os.PathLike, p: Processed) -> None:
    write_npz(
        path,
        delays_s=p.pdps.delays_s,
        powers=p.pdps.powers,
        k_factor=p.pdps.k_factor,
        n_taps=p.pdps.n_taps,
        split=p.split,
        source_index=p.source_index,
    )


def load_processed(directory: str | os.PathLike, scenario: str, split: str | None = None) -> PDPSet:
    """The PDPs of ``scenario`` from ``directory/<scenario>.npz``, optionally only one split."""
    path = Path(directory) / f"{check_scenario(scenario)}.npz"
    if not path.is_file():
        raise MissingInputError(f"{path}: no processed PDPs for {scenario}; run `dvc repro`")
    with np.load(path, allow_pickle=False) as z:
        pdps = PDPSet(scenario, z["delays_s"], z["powers"], z["k_factor"], z["n_taps"])
        if split is None:
            return pdps
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return pdps.subset(np.flatnonzero(z["split"] == SPLITS.index(split)))


def stats(p: Processed) -> dict:
    """Per-scenario summary for ``reports/pdp_stats.json`` (delay spreads in ns)."""
    ds_ns = p.pdps.rms_delay_spread_s() * 1e9
    taps = p.pdps.n_taps
    return {
        "n_raw": p.n_raw,
        "n": len(p.pdps),
        "n_duplicates": p.n_duplicates,
        "n_taps_beyond_cp": p.n_taps_beyond_cp,
        **{f"n_{s}": int((p.split == i).sum()) for i, s in enumerate(SPLITS)},
        "taps_min": int(taps.min()),
        "taps_median": float(np.median(taps)),
        "taps_max": int(taps.max()),
        "ds_ns_median": round(float(np.median(ds_ns)), 3),
        "ds_ns_mean": round(float(np.mean(ds_ns)), 3),
        "ds_ns_p90": round(float(np.percentile(ds_ns, 90)), 3),
        "los_fraction": round(float(np.mean(p.pdps.k_factor > 0)), 4),
    }
