"""The methods of the reports in one table: name, role, label and style.

:data:`TABLE` holds the built-in methods and, before the genie bound, the classical methods of
:mod:`chanest.evaluation.plugins` (one module each). Every list of methods derives from it: the
rows of the reports and their order (:data:`NAMES`), the learned ones compared with NOMP
(:data:`LEARNED`), the adapted ones compared with the base (:data:`ADAPTED`), the figures' styles
(:func:`style`) and the colour scales of the ``dvc plots`` templates in ``.dvc/plots/`` (written
from it by :mod:`chanest.evaluation.templates`). A name that is not in the table fails where a
list or a style is asked for it. Imports nothing heavy: the `report` and `plot` stages read it
without torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from chanest.errors import InputError
from chanest.evaluation import plugins

#: What a method is: ``classical`` (no training), ``bound`` (told the truth), ``learned`` (trained
#: on the source scenarios), ``adapted`` (from the base, on one target).
ROLES = ("classical", "bound", "learned", "adapted")


@dataclass(frozen=True)
class Method:
    name: str
    role: str
    label: str
    color: str
    marker: str
    linestyle: str = ""  # matplotlib's default (solid) when empty

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"method {self.name!r}: role {self.role!r} not in {ROLES}")


BUILT_IN = (
    Method("ls", "classical", "LS + linear", "#8c8c8c", "o"),
    Method("lmmse_stat", "classical", "LMMSE (scenario stats)", "#1f77b4", "s"),
    Method("nomp", "classical", "NOMP (off-grid, training-free)", "#17becf", "P"),
    Method("lmmse_genie", "bound", "genie LMMSE (bound)", "#000000", "", "--"),
    Method("base", "learned", "base", "#ff7f0e", "^"),
    Method("lora", "adapted", "LoRA", "#2ca02c", "v"),
    Method("full_ft", "adapted", "full fine-tuning", "#9467bd", "x"),
    Method("scratch", "adapted", "from scratch", "#8c564b", "D"),
)


def _plugin_methods() -> tuple[tuple[Method, ...], dict[str, Callable]]:
    """The methods of :mod:`chanest.evaluation.plugins` (see there), checked, with their builders."""
    rows, builders = [], {}
    taken = {m.name for m in BUILT_IN}
    for mod in plugins.discover():
        where = mod.__file__
        missing = [k for k in ("NAME", "LABEL", "COLOR", "MARKER", "build") if not hasattr(mod, k)]
        if missing:
            raise InputError(f"{where}: a method module defines NAME, LABEL, COLOR, MARKER and build(context); "
                             f"missing {', '.join(missing)}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", str(mod.NAME)) or mod.NAME in taken:
            raise InputError(f"{where}: NAME {mod.NAME!r} must be letters, digits and _, and not one of "
                             f"{', '.join(sorted(taken))}")
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", str(mod.COLOR)):
            raise InputError(f"{where}: COLOR {mod.COLOR!r} is not #rrggbb")
        taken.add(mod.NAME)
        rows.append(Method(mod.NAME, "classical", str(mod.LABEL), mod.COLOR, str(mod.MARKER)))
        builders[mod.NAME] = mod.build
    return tuple(rows), builders


_PLUGINS, BUILDERS = _plugin_methods()  # BUILDERS: name -> build(context) of each plugin's method
#: Every method: the built-in classical ones, the plugins', then the bound and the learned ones.
TABLE: dict[str, Method] = {m.name: m for m in (
    *(m for m in BUILT_IN if m.role == "classical"), *_PLUGINS, *(m for m in BUILT_IN if m.role != "classical"))}

#: Every method, in the order of the reports' rows.
NAMES = tuple(TABLE)
#: The learned methods (each compared with NOMP, the training-free off-grid peer).
LEARNED = tuple(m for m, x in TABLE.items() if x.role in ("learned", "adapted"))
#: The methods adapted from the base to a target (each compared with the base).
ADAPTED = tuple(m for m, x in TABLE.items() if x.role == "adapted")


def method(name: str) -> Method:
    """The table's entry for ``name``; an :class:`InputError` naming the known methods otherwise."""
    if name not in TABLE:
        raise InputError(f"unknown method {name!r}; the methods are {', '.join(NAMES)} "
                         "(chanest/evaluation/methods.py)")
    return TABLE[name]


def subset(*names: str) -> tuple[str, ...]:
    """``names``, each checked to be a method of the table (a study's own selection)."""
    return tuple(method(n).name for n in names)


def style(name: str) -> dict:
    """matplotlib keyword arguments of ``name``: colour, marker, line style if any, label."""
    m = method(name)
    kw = {"color": m.color, "marker": m.marker}
    if m.linestyle:
        kw["linestyle"] = m.linestyle
    return kw | {"label": m.label}
