"""Scenarios by name, each with its own PDP source: TR 38.901 through Sionna, or a file.

A scenario is a name and where its PDPs come from. The ten built-in names (``UMa_Los``, ...,
:data:`~chanest.channel.pdp.SCENARIOS`) are shorthand: their PDPs come from ``pdp.source``, either
Sionna's TR 38.901 model of that name (with ``pdp.carrier_ghz``, ``pdp.inf_subscenario``,
``pdp.n_drops``) or the file ``PDP_<name>.mat`` in ``pdp.mat_dir``. Any other name, and any
built-in one to override it, is a *site* declared under ``sites:`` in ``params.yaml``::

    sites:
      Factory_A: {source: mat, file: PDP_Factory_A.mat}       # a file in pdp.mat_dir
      Campus_B: {source: tr38901, model: UMi, los: false, carrier_ghz: 28.0}

Sources and targets mix freely (Sionna sources with file targets, or the reverse). Everything that
belongs to a scenario is seeded from its name (:func:`~chanest.channel.pdp.name_key`), so adding,
removing or reordering scenarios changes nothing about the others.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chanest.channel.pdp import PDP, SCENARIOS, PDPError, check_scenario, mat_filename, name_key, read_mat
from chanest.utils.io import write_json
from chanest.utils.params import ParamsError

#: The PDP sources a site can name.
SOURCES: tuple[str, ...] = ("tr38901", "mat")
#: TR 38.901 model families Sionna provides.
MODELS: tuple[str, ...] = ("InF", "InH", "RMa", "UMa", "UMi")
#: A resolved site's description in its folder (:meth:`Site.write`).
SOURCE_FILE = "source.json"
_KEYS = {"tr38901": ("source", "model", "los", "carrier_ghz", "inf_subscenario", "n_drops"),
         "mat": ("source", "file")}


class SiteError(ParamsError):
    """A scenario that cannot be resolved to a PDP source; the message names the params key."""


@dataclass(frozen=True)
class Site:
    """One scenario and its PDP source.

    name: the scenario name (files, stage names, tables). source: ``tr38901`` or ``mat``.
    path: the ``.mat`` file (``mat``). tr38901: the TR 38.901 scenario Sionna draws (``UMi_Nlos``),
    carrier_ghz: its carrier (GHz), inf_subscenario: the InF hall (``sl``/``dl``/``sh``/``dh``),
    n_drops: how many PDPs to draw.
    """

    name: str
    source: str
    path: str | None = None
    tr38901: str | None = None
    carrier_ghz: float = 3.5
    inf_subscenario: str = "dh"
    n_drops: int = 1000

    def describe(self) -> str:
        if self.source == "mat":
            return f"file {self.path}"
        return (f"TR 38.901 {self.tr38901} at {self.carrier_ghz:g} GHz"
                + (f" (InF {self.inf_subscenario})" if self.tr38901.startswith("InF") else "")
                + f", {self.n_drops} drops")

    def check_file(self, key: str) -> None:
        """Raise :class:`SiteError` naming ``key`` if a file site's file is missing."""
        if self.source == "mat" and not Path(self.path).is_file():
            raise SiteError(f"params: {key}: no such PDP file {self.path}")

    def write(self, directory: str | Path) -> None:
        """Write the resolved source to ``directory`` (the `sites` stage's output for this scenario):
        ``source.json`` (every field), and for a file site a byte copy of its file, so the stage
        that reads the PDPs depends on this folder alone (see :func:`read`)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        fields = dataclasses.asdict(self)
        if self.source == "mat":
            shutil.copyfile(self.path, directory / mat_filename(self.name))
            fields["path"] = mat_filename(self.name)
        write_json(directory / SOURCE_FILE, fields)

    @classmethod
    def read(cls, directory: str | Path) -> Site:
        """The site written by :meth:`write` into ``directory`` (its file, if any, the copy there)."""
        directory = Path(directory)
        path = directory / SOURCE_FILE
        if not path.is_file():
            raise SiteError(f"{path}: no resolved PDP source; run `dvc repro` (stage sites)")
        fields = json.loads(path.read_text())
        if fields.get("source") == "mat":
            fields["path"] = str(directory / fields["path"])
        return cls(**fields)

    def load(self, seed: int) -> list[PDP]:
        """The site's PDPs: read from its file, or drawn from Sionna seeded by ``seed`` and the
        name (the same name and seed give the same PDPs, whatever else params list)."""
        if self.source == "mat":
            return read_mat(self.path)
        from chanest.channel.tr38901 import generate_pdps  # Sionna's import is slow: only when used
        from chanest.utils import cpu

        cpu.warm_up()  # before the first threaded MKL call (chanest.utils.cpu)

        sionna_seed = int(np.random.SeedSequence([seed, name_key(self.name)]).generate_state(1)[0])
        return generate_pdps(self.tr38901, self.n_drops, self.carrier_ghz * 1e9, sionna_seed,
                             inf_subscenario=self.inf_subscenario)


def resolve(name: str, sites: dict[str, Any], pdp: Any) -> Site:
    """The :class:`Site` of scenario ``name``: its ``sites.<name>`` entry, else a built-in name
    through ``pdp`` (a :class:`~chanest.config.PDPParams`). Raises :class:`SiteError` naming the
    key on an unknown name, an unknown source, a missing or unexpected key or a wrong type."""
    defaults = dict(carrier_ghz=float(pdp.carrier_ghz), inf_subscenario=pdp.inf_subscenario,
                    n_drops=int(pdp.n_drops))
    if name not in sites:
        if name not in SCENARIOS:
            raise SiteError(
                f"params: scenario {name!r} is not a built-in name ({', '.join(SCENARIOS)}) and has no "
                f"entry under sites: (e.g. sites.{name}: {{source: mat, file: PDP_{name}.mat}})")
        if pdp.source == "mat_dir":
            return Site(name, "mat", path=str(Path(pdp.mat_dir) / mat_filename(name)))
        return Site(name, "tr38901", tr38901=name, **defaults)
    key = f"sites.{name}"
    entry = sites[name]
    if not isinstance(entry, dict):
        raise SiteError(f"params: {key} = {entry!r}: expected a mapping with a source "
                        f"({' or '.join(SOURCES)})")
    source = entry.get("source")
    if source not in SOURCES:
        raise SiteError(f"params: {key}.source = {source!r}: expected one of {', '.join(SOURCES)}")
    unknown = sorted(set(entry) - set(_KEYS[source]))
    if unknown:
        raise SiteError(f"params: {key}: unknown key(s) {unknown} for source {source}; "
                        f"expected {', '.join(_KEYS[source])}")
    if source == "mat":
        file = entry.get("file")
        if not isinstance(file, str) or not file.endswith(".mat") or Path(file).is_absolute() or ".." in Path(file).parts:
            raise SiteError(f"params: {key}.file = {file!r}: expected a .mat file name inside "
                            f"pdp.mat_dir ({pdp.mat_dir}), e.g. PDP_{name}.mat")
        return Site(name, "mat", path=str(Path(pdp.mat_dir) / file))
    model, los = entry.get("model"), entry.get("los")
    if model not in MODELS:
        raise SiteError(f"params: {key}.model = {model!r}: expected one of {', '.join(MODELS)}")
    if not isinstance(los, bool):
        raise SiteError(f"params: {key}.los = {los!r}: expected true or false")
    values = {**defaults, **{k: entry[k] for k in ("carrier_ghz", "inf_subscenario", "n_drops") if k in entry}}
    if isinstance(values["carrier_ghz"], bool) or not isinstance(values["carrier_ghz"], (int, float)) \
            or not values["carrier_ghz"] > 0:
        raise SiteError(f"params: {key}.carrier_ghz = {values['carrier_ghz']!r}: expected a number > 0 (GHz)")
    if isinstance(values["n_drops"], bool) or not isinstance(values["n_drops"], int) or values["n_drops"] < 1:
        raise SiteError(f"params: {key}.n_drops = {values['n_drops']!r}: expected an integer >= 1")
    if values["inf_subscenario"] not in ("sl", "dl", "sh", "dh"):
        raise SiteError(f"params: {key}.inf_subscenario = {values['inf_subscenario']!r}: "
                        "expected one of sl, dl, sh, dh")
    return Site(name, "tr38901", tr38901=f"{model}_{'Los' if los else 'Nlos'}",
                carrier_ghz=float(values["carrier_ghz"]), inf_subscenario=values["inf_subscenario"],
                n_drops=values["n_drops"])


def check_lists(sources: Any, targets: Any) -> tuple[list[str], list[str]]:
    """``scenarios.sources`` and ``scenarios.targets`` checked: lists of safe names, no repeats,
    no scenario in both (a target is a scenario the base never saw), at least one source."""
    checked = []
    for key, names in (("scenarios.sources", sources), ("scenarios.targets", targets)):
        if not isinstance(names, list):
            raise SiteError(f"params: {key} = {names!r}: expected a list of scenario names")
        for i, name in enumerate(names):
            try:
                check_scenario(name)
            except PDPError as err:
                raise SiteError(f"params: {key}[{i}]: {err}") from None
            if names.index(name) != i:
                raise SiteError(f"params: {key} lists {name!r} twice")
        checked.append(list(names))
    if not checked[0]:
        raise SiteError("params: scenarios.sources is empty: the base needs at least one scenario")
    both = [n for n in checked[1] if n in checked[0]]
    if both:
        raise SiteError(f"params: {both[0]!r} is in both scenarios.sources and scenarios.targets: "
                        "a target must be a scenario the base is not trained on")
    return checked[0], checked[1]
