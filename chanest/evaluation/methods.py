"""The methods of the reports in one table: name, role, label and style.

Every list of methods derives from :data:`TABLE`: the rows of the reports and their order
(:data:`NAMES`), the learned ones compared with NOMP (:data:`LEARNED`), the adapted ones compared
with the base (:data:`ADAPTED`), the figures' styles (:func:`style`) and the colour scales of the
``dvc plots`` templates in ``.dvc/plots/`` (checked against the table by a test). A name that is
not in the table fails where a list or a style is asked for it. Imports nothing heavy: the
`report` and `plot` stages read it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from chanest.errors import InputError

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


TABLE: dict[str, Method] = {m.name: m for m in (
    Method("ls", "classical", "LS + linear", "#8c8c8c", "o"),
    Method("lmmse_stat", "classical", "LMMSE (scenario stats)", "#1f77b4", "s"),
    Method("nomp", "classical", "NOMP (off-grid, training-free)", "#17becf", "P"),
    Method("lmmse_genie", "bound", "genie LMMSE (bound)", "#000000", "", "--"),
    Method("base", "learned", "base", "#ff7f0e", "^"),
    Method("lora", "adapted", "LoRA", "#2ca02c", "v"),
    Method("full_ft", "adapted", "full fine-tuning", "#9467bd", "x"),
    Method("scratch", "adapted", "from scratch", "#8c564b", "D"),
)}

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
