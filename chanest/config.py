"""Typed views of the ``params.yaml`` sections each stage reads.

The sections of the models, the NOMP baseline and training are parsed into the configuration
classes of their packages, imported when first asked for: a stage that only reads scenarios,
sites or the numerology (``sites``, ``pdp``, ``report``, ``plot``) does not load torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import PDPError, check_scenario
from chanest.channel.sites import Site, SiteError, check_lists, resolve
from chanest.utils.params import COUNT, DROPOUT, POSITIVE, ParamsError, Range, from_section, get

if TYPE_CHECKING:
    from chanest.estimators.model import EstimatorConfig
    from chanest.estimators.nomp import NOMPConfig
    from chanest.training.train import TrainConfig

PDP_SOURCES = ("tr38901", "mat_dir")
NORMALISATIONS = ("realisation", "pdp")


@dataclass(frozen=True)
class PDPParams:
    """``pdp``: where the built-in scenario names' PDPs come from (``source``: Sionna's TR 38.901
    models with these carrier, InF hall and drop count, or ``PDP_<name>.mat`` files in
    ``mat_dir``), and the folder every PDP file is read from (sites' files included)."""

    source: str = "tr38901"
    mat_dir: str = "data/nyusim-28ghz"
    n_drops: int = 1000
    carrier_ghz: float = 3.5
    inf_subscenario: str = "dh"

    RANGES: ClassVar[dict[str, Range]] = {"n_drops": COUNT, "carrier_ghz": POSITIVE}

    def __post_init__(self) -> None:
        if self.source not in PDP_SOURCES:
            raise ValueError(f"source {self.source!r} not in {PDP_SOURCES}")


@dataclass(frozen=True)
class ModelParams:
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
    delay_oversample: float = 2.0
    delay_channels: int = 32
    delay_blocks: int = 5
    offgrid_taps: int = 0
    offgrid_cyclic_rounds: int = 1

    RANGES: ClassVar[dict[str, Range]] = {
        "token_size": COUNT, "d_model": COUNT, "n_heads": COUNT, "n_layers": COUNT, "d_ff": COUNT,
        "dropout": DROPOUT, "delay_oversample": POSITIVE, "delay_channels": COUNT, "delay_blocks": COUNT,
        "offgrid_taps": Range(0.0), "offgrid_cyclic_rounds": COUNT,
    }


@dataclass(frozen=True)
class EvalParams:
    snr_db: tuple[float, ...] = (-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0)
    n_samples: int = 500
    cross_n_samples: int = 100  # per SNR, for adapters on the other scenarios (cross table)
    seed: int = 7  # the test sets' own seed (and the bootstrap's)
    batch_size: int = 500
    n_boot: int = 2000  # replicates of the bootstrap over test PDPs (confidence intervals)
    device: str = "auto"

    RANGES: ClassVar[dict[str, Range]] = {
        "n_samples": Range(2.0), "cross_n_samples": COUNT, "batch_size": COUNT, "n_boot": Range(100.0),
    }

    def __post_init__(self) -> None:
        if list(self.snr_db) != sorted(set(self.snr_db)):
            raise ValueError(f"snr_db must be increasing without repeats, got {list(self.snr_db)}")
        if self.cross_n_samples > self.n_samples:
            raise ValueError(f"cross_n_samples ({self.cross_n_samples}) must be <= n_samples ({self.n_samples})")


def eval_params(params: dict[str, Any]) -> EvalParams:
    return from_section(EvalParams, get(params, "eval"), "eval")


def nomp(params: dict[str, Any]) -> NOMPConfig:
    """``nomp``: the settings of the NOMP baseline (:mod:`chanest.estimators.nomp`)."""
    from chanest.estimators.nomp import NOMPConfig

    return from_section(NOMPConfig, get(params, "nomp"), "nomp")


def scenarios(params: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(sources, targets): safe names, no repeats, none in both, each resolvable to a PDP source
    (a built-in name or a ``sites`` entry; see :mod:`chanest.channel.sites`)."""
    sources, targets = check_lists(get(params, "scenarios.sources"), get(params, "scenarios.targets"))
    sites(params, sources + targets)
    return sources, targets


def sites(params: dict[str, Any], names: list[str] | None = None) -> dict[str, Site]:
    """Every scenario of ``names`` (default: sources, then targets) with its PDP source."""
    entries = params.get("sites") or {}
    if not isinstance(entries, dict):
        raise SiteError(f"params: sites = {entries!r}: expected a mapping of scenario names to sources")
    for name in entries:
        try:
            check_scenario(name)
        except PDPError as err:
            raise SiteError(f"params: sites: {err}") from None
    if names is None:
        names = all_scenarios(params)
    pdp = from_section(PDPParams, get(params, "pdp"), "pdp")
    return {name: resolve(name, entries, pdp) for name in names}


def all_scenarios(params: dict[str, Any]) -> list[str]:
    """Sources, then targets."""
    sources, targets = scenarios(params)
    return sources + targets


def seed(params: dict[str, Any]) -> int:
    value = get(params, "seed")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ParamsError(f"params: seed = {value!r} is not an integer")
    return value


def ofdm(params: dict[str, Any]) -> OFDMConfig:
    return from_section(OFDMConfig, get(params, "ofdm"), "ofdm")


def normalisation(params: dict[str, Any]) -> str:
    value = get(params, "synth.normalisation")
    if value not in NORMALISATIONS:
        raise ParamsError(f"params: synth.normalisation = {value!r}; expected one of {NORMALISATIONS}")
    return value


def train(params: dict[str, Any], section: str, exclude: tuple[str, ...] = ()) -> TrainConfig:
    """The optimisation keys of ``section`` (``base`` or ``lora``) as a :class:`TrainConfig`."""
    from chanest.training.train import TrainConfig

    raw = {k: v for k, v in get(params, section).items() if k not in exclude}
    if raw.get("amp") is False:  # YAML 1.1 reads a bare `off` (also from `dvc exp run -S`) as false
        raw["amp"] = "off"
    return from_section(TrainConfig, raw, section)


def estimator(params: dict[str, Any], ofdm_cfg: OFDMConfig) -> EstimatorConfig:
    from chanest.estimators.model import EstimatorConfig

    m = from_section(ModelParams, get(params, "model"), "model")
    try:
        return EstimatorConfig(
            n_subcarriers=ofdm_cfg.n_subcarriers,
            pilot_indices=tuple(ofdm_cfg.pilot_indices.tolist()),
            subcarrier_spacing_hz=ofdm_cfg.subcarrier_spacing_hz,
            # taps reach the CP, shifted by the common delay offset: the robust prior covers both
            prior_max_delay_s=ofdm_cfg.cp_s + ofdm_cfg.max_delay_offset_s,
            **dataclasses.asdict(m),
        )
    except ValueError as err:
        raise ParamsError(f"params: model: {err}") from err
