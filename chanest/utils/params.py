"""Reading ``params.yaml``: one file drives every stage; wrong keys or types fail loudly.

Each section maps onto a frozen dataclass (``OFDMConfig``, ``TrainConfig``, ...) through
:func:`from_section`, which rejects unknown keys, values of the wrong type and numbers outside the
dataclass's declared ``RANGES`` (e.g. ``lora.alpha > 0``), naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from chanest.errors import ParamsError  # noqa: F401  (raised here; defined there)

T = TypeVar("T")


@dataclass(frozen=True)
class Range:
    """The interval a numeric param must lie in; for a list or a mapping, every value of it.

    A dataclass built by :func:`from_section` declares its ranges as a class attribute
    ``RANGES: ClassVar[dict[str, Range]]`` (key -> range); a value outside is a :class:`ParamsError`
    naming the key, raised before any work. Non-numeric values (e.g. ``"all"``) are left to the
    dataclass's own checks.
    """

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, x: float) -> bool:
        above = x > self.low if self.low_open else x >= self.low
        below = x < self.high if self.high_open else x <= self.high
        return above and below  # NaN is in no range

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low == -math.inf:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


POSITIVE = Range(0.0, low_open=True)  # > 0: learning rates, scales, frequencies
NON_NEGATIVE = Range(0.0)  # >= 0: weight decay, clipping (0: off), offsets
COUNT = Range(1.0)  # >= 1: steps, sizes, samples, workers
FRACTION = Range(0.0, 1.0)  # in [0, 1]
DROPOUT = Range(0.0, 1.0, high_open=True)  # in [0, 1)


def check_ranges(values: dict[str, Any], ranges: dict[str, Range], name: str) -> None:
    """Raise :class:`ParamsError` naming ``name.key`` for the first value outside its range."""
    for key, rng in ranges.items():
        if key not in values:
            continue
        value = values[key]
        items = (value.items() if isinstance(value, dict)
                 else enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)])
        for sub, x in items:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                continue
            if x not in rng:
                where = (f"{name}.{key}" if sub is None else
                         f"{name}.{key}.{sub}" if isinstance(value, dict) else f"{name}.{key}[{sub}]")
                raise ParamsError(f"params: {where} = {x!r} is out of range: it must be {rng}")


def load_params(path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ParamsError(f"{path}: cannot read params ({err})") from err
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level")
    return params


def get(params: dict[str, Any], dotted: str) -> Any:
    """``get(params, "lora.r")``; raises naming the key if it is absent."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ParamsError(f"params: missing key {dotted!r}")
        node = node[part]
    return node


def _check(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` converted to ``tp`` (int -> float allowed), else raise naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for alt in typing.get_args(tp):
            try:
                return _check(value, alt, key)
            except ParamsError:
                continue
        raise ParamsError(f"params: {key} = {value!r} is not of type {tp}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is Any:
        return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin in (list, tuple):
        args = typing.get_args(tp)
        if isinstance(value, (list, tuple)):
            if origin is tuple and args and args[-1] is not Ellipsis:
                if len(value) != len(args):
                    raise ParamsError(f"params: {key} expects {len(args)} values, got {value!r}")
                return tuple(_check(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
            item = args[0] if args else Any
            return origin(_check(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    elif origin is dict or tp is dict:
        if isinstance(value, dict):
            args = typing.get_args(tp)
            if not args:
                return dict(value)
            return {_check(k, args[0], key): _check(v, args[1], f"{key}.{k}") for k, v in value.items()}
    else:
        raise TypeError(f"unsupported param type {tp} for {key}")
    hint = " (YAML reads 1e-4 as a string: write 1.0e-4)" if isinstance(value, str) else ""
    raise ParamsError(f"params: {key} = {value!r} is not of type {getattr(tp, '__name__', tp)}{hint}")


def from_section(cls: type[T], section: dict[str, Any] | None, name: str,
                 given: dict[str, Any] | None = None) -> T:
    """Build dataclass ``cls`` from the params section ``name``, checking keys and types.

    ``given``: fields of ``cls`` that the caller sets and the section must not (e.g. the numerology
    of an estimator's config, which comes from the ``ofdm`` section).
    """
    section = {} if section is None else section
    given = {} if given is None else given
    if not isinstance(section, dict):
        raise ParamsError(f"params: {name} must be a mapping, got {section!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)} - set(given)
    unknown = sorted(set(section) - known)
    if unknown:
        raise ParamsError(f"params: unknown key(s) {', '.join(f'{name}.{k}' for k in unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    values = {k: _check(v, hints[k], f"{name}.{k}") for k, v in section.items()}
    check_ranges(values, getattr(cls, "RANGES", {}), name)
    try:
        return cls(**values, **given)
    except (TypeError, ValueError) as err:
        raise ParamsError(f"params: {name}: {err}") from err
