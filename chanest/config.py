"""Typed views of the ``params.yaml`` sections that describe the data: the seed, the scenarios and
sites, the PDP source, the numerology, the normalisation, and the evaluation's test sets.

The sections of a model, of the NOMP baseline and of training are parsed where their
configuration classes live (:func:`chanest.estimators.model.estimator_config`,
:func:`chanest.estimators.nomp.nomp_config`, :func:`chanest.training.train.train_config`), so
this module, and every stage that reads only data sections (``sites``, ``pdp``, ``report``,
``plot``), depends on neither the estimators nor the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from chanest.channel.ofdm import OFDMConfig
from chanest.channel.pdp import PDPError, check_scenario
from chanest.channel.sites import Site, SiteError, check_lists, resolve
from chanest.utils.params import COUNT, POSITIVE, ParamsError, Range, from_section, get

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
