"""Power-delay profiles (PDPs): the in-memory type, the research ``.mat`` format, validation.

A PDP is one link's list of taps: delays (seconds, ascending, first tap usually at 0) and linear
powers. A Rician K-factor may accompany it: the first tap then holds a specular component of power
``K / (K + 1)`` of the PDP's total power (the rest of that tap, and every other tap, is diffuse).
``K = 0`` means every tap is Rayleigh faded, as in the research code.

On disk (``PDP_<Scenario>.mat``, MATLAB v5, read with :func:`scipy.io.loadmat`):

- ``pdp``: a (1, N) cell array; each cell a float64 (n_taps, 2) array, column 0 the tap delay in
  nanoseconds, column 1 the linear tap power;
- ``k_factor`` (optional, written by chanest): a (1, N) float64 array of linear K-factors.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chanest.errors import PDPError  # noqa: F401  (raised here; defined there)
from chanest.utils import io as chanest_io

#: The built-in scenario names: TR 38.901 scenario and LOS/NLOS condition. Any other safe name
#: is a scenario too, once ``params.yaml`` says where its PDPs come from (:mod:`chanest.channel.sites`).
SCENARIOS: tuple[str, ...] = tuple(
    f"{s}_{c}" for s in ("InF", "InH", "RMa", "UMa", "UMi") for c in ("Los", "Nlos")
)

#: A scenario name: it becomes a file name, a DVC stage name (``transfer@<name>``) and a column.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")


def check_scenario(name: str) -> str:
    """Return ``name`` if it is a safe scenario name (:data:`NAME`), else raise saying why."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise PDPError(f"scenario name {name!r} is not safe: expected a letter, then letters, digits "
                       "or '_' (at most 40 characters), e.g. Factory_A")
    return name


def name_key(name: str) -> int:
    """A stable 32-bit number for a scenario name, to seed what belongs to that scenario.

    The first four bytes of the name's SHA-256 (big-endian): the same on every machine and Python
    version (unlike ``hash``), and independent of which other scenarios params list or in what
    order. ``name_key("UMa_Los") == 3932258322``.
    """
    return int.from_bytes(hashlib.sha256(check_scenario(name).encode()).digest()[:4], "big")


def mat_filename(scenario: str) -> str:
    """File name of a scenario's PDPs: ``PDP_<Scenario>.mat``."""
    return f"PDP_{check_scenario(scenario)}.mat"


@dataclass(frozen=True)
class PDP:
    """One power-delay profile.

    delays_s: (n_taps,) float64, seconds. powers: (n_taps,) float64, linear.
    k_factor: linear Rician K of the first tap (0 = Rayleigh).
    """

    delays_s: np.ndarray
    powers: np.ndarray
    k_factor: float = 0.0

    @property
    def n_taps(self) -> int:
        return int(self.delays_s.shape[0])

    def rms_delay_spread_s(self) -> float:
        """RMS delay spread in seconds (power-weighted standard deviation of the delays)."""
        p = self.powers / self.powers.sum()
        mean = float(np.sum(p * self.delays_s))
        return float(np.sqrt(max(np.sum(p * self.delays_s**2) - mean**2, 0.0)))


@dataclass(frozen=True)
class PDPSet:
    """The PDPs of one scenario, padded to a common tap count (the layout synthesis works on).

    delays_s: (n, max_taps) float64 seconds; padded taps hold delay 0 and power 0.
    powers:   (n, max_taps) float64 linear; each row sums to 1 after :meth:`normalised`.
    k_factor: (n,) float64 linear Rician K of the first tap (0 = Rayleigh).
    n_taps:   (n,) int64 number of real (unpadded) taps per PDP.
    """

    scenario: str
    delays_s: np.ndarray
    powers: np.ndarray
    k_factor: np.ndarray
    n_taps: np.ndarray

    def __len__(self) -> int:
        return int(self.delays_s.shape[0])

    @classmethod
    def from_pdps(cls, scenario: str, pdps: list[PDP]) -> PDPSet:
        n, width = len(pdps), max((p.n_taps for p in pdps), default=1)
        delays = np.zeros((n, width))
        powers = np.zeros((n, width))
        for i, p in enumerate(pdps):
            delays[i, : p.n_taps] = p.delays_s
            powers[i, : p.n_taps] = p.powers
        return cls(
            scenario,
            delays,
            powers,
            np.array([p.k_factor for p in pdps], dtype=np.float64),
            np.array([p.n_taps for p in pdps], dtype=np.int64),
        )

    def pdp(self, i: int) -> PDP:
        n = int(self.n_taps[i])
        return PDP(self.delays_s[i, :n].copy(), self.powers[i, :n].copy(), float(self.k_factor[i]))

    def subset(self, index: np.ndarray) -> PDPSet:
        return PDPSet(
            self.scenario,
            self.delays_s[index],
            self.powers[index],
            self.k_factor[index],
            self.n_taps[index],
        )

    def normalised(self) -> PDPSet:
        """Each PDP scaled to unit total power (E|H[k]|^2 = 1)."""
        total = self.powers.sum(axis=1, keepdims=True)
        return PDPSet(self.scenario, self.delays_s, self.powers / total, self.k_factor, self.n_taps)

    def rms_delay_spread_s(self) -> np.ndarray:
        """(n,) RMS delay spread of each PDP, seconds."""
        p = self.powers / self.powers.sum(axis=1, keepdims=True)
        mean = np.sum(p * self.delays_s, axis=1)
        return np.sqrt(np.maximum(np.sum(p * self.delays_s**2, axis=1) - mean**2, 0.0))


# --------------------------------------------------------------------------------------------
# The research .mat format
# --------------------------------------------------------------------------------------------


def validate_pdp(delays_ns: np.ndarray, powers: np.ndarray, where: str) -> None:
    """Raise :class:`PDPError` unless the taps are finite, delays >= 0 ascending, powers > 0."""
    if delays_ns.shape[0] < 1:
        raise PDPError(f"{where}: expected at least one tap, got none")
    if not (np.all(np.isfinite(delays_ns)) and np.all(np.isfinite(powers))):
        raise PDPError(f"{where}: expected finite delays and powers, found NaN or inf")
    if np.any(powers <= 0):
        raise PDPError(f"{where}: expected powers > 0 (linear), found {powers.min():.3g}")
    if np.any(delays_ns < 0):
        raise PDPError(f"{where}: expected delays >= 0 ns, found {delays_ns.min():.3g}")
    if np.any(np.diff(delays_ns) < 0):
        raise PDPError(f"{where}: expected ascending delays")


def read_mat(path: str | os.PathLike) -> list[PDP]:
    """Read and validate a ``PDP_<Scenario>.mat`` file.

    Returns the PDPs with delays converted to seconds. Raises :class:`PDPError` naming the file
    (and the PDP index) on an unreadable file, a missing ``pdp`` variable, a cell of the wrong
    shape, or taps that fail :func:`validate_pdp`.
    """
    import scipy.io  # here: ~0.2 s that a stage which reads no .mat file does not pay

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for corrupt files
        raise PDPError(f"{path}: not a readable MATLAB .mat file ({err})") from err
    if "pdp" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise PDPError(f"{path}: expected a variable 'pdp' (a 1xN cell array), found {found}")
    cells = mat["pdp"]
    if cells.dtype != object or cells.ndim != 2 or 1 not in cells.shape:
        raise PDPError(
            f"{path}: 'pdp' must be a 1xN cell array, got {cells.dtype} array {cells.shape}"
        )
    cells = cells.reshape(-1)
    k = mat.get("k_factor")
    k = np.zeros(len(cells)) if k is None else np.asarray(k, dtype=np.float64).reshape(-1)
    if k.shape[0] != len(cells) or not np.all(np.isfinite(k)) or np.any(k < 0):
        raise PDPError(f"{path}: 'k_factor' must hold {len(cells)} finite values >= 0")
    pdps = []
    for i, cell in enumerate(cells):
        where = f"{path} pdp{{{i + 1}}} (index {i})"
        arr = np.asarray(cell)
        if arr.dtype == object or arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
            raise PDPError(f"{where}: expected an (n_taps, 2) float array, got shape {arr.shape}")
        arr = arr.astype(np.float64)
        validate_pdp(arr[:, 0], arr[:, 1], where)
        pdps.append(PDP(arr[:, 0] * 1e-9, arr[:, 1], float(k[i])))
    return pdps


def write_mat(path: str | os.PathLike, pdps: list[PDP]) -> None:
    """Write PDPs in the research format (delays in ns), atomically (temp file, then rename)."""
    cells = np.empty((1, len(pdps)), dtype=object)
    for i, p in enumerate(pdps):
        cells[0, i] = np.stack([p.delays_s * 1e9, p.powers], axis=1)
    k = np.array([[p.k_factor for p in pdps]], dtype=np.float64)
    chanest_io.write_mat(path, {"pdp": cells, "k_factor": k})


def scenario_from_filename(path: str | os.PathLike) -> str:
    """``.../PDP_InF_Los.mat`` -> ``InF_Los`` (checked to be a safe name)."""
    m = re.fullmatch(r"PDP_(.+)\.mat", Path(path).name)
    if not m:
        raise PDPError(f"{path}: expected a file named PDP_<Scenario>.mat")
    return check_scenario(m.group(1))


def concat(sets: list[PDPSet], scenario: str = "mixed") -> PDPSet:
    """Stack several PDP sets (padding every one to the widest tap count)."""
    width = max(s.delays_s.shape[1] for s in sets)

    def pad(a: np.ndarray) -> np.ndarray:
        return np.pad(a, ((0, 0), (0, width - a.shape[1])))

    return PDPSet(
        scenario,
        np.concatenate([pad(s.delays_s) for s in sets]),
        np.concatenate([pad(s.powers) for s in sets]),
        np.concatenate([s.k_factor for s in sets]),
        np.concatenate([s.n_taps for s in sets]),
    )
