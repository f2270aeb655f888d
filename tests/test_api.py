"""The public API at the top of the package, and the README's Python example, run as written."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

import chanest
from conftest import REPO


def test_every_public_name_loads_from_its_module():
    for name in chanest.__all__:
        assert getattr(chanest, name).__name__ == name, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        chanest.nope  # noqa: B018


def test_the_readme_python_example_runs_and_prints_the_numbers_it_states(monkeypatch):
    readme = (REPO / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(REPO)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    ls_db, genie_db = (float(x) for x in re.findall(r"-?\d+\.\d+", out.getvalue()))
    stated = [float(x) for x in re.findall(r"(-?\d+\.\d) dB \(", code)]  # the comment under print()
    assert ls_db == pytest.approx(-11.2, abs=0.05) and genie_db == pytest.approx(-29.6, abs=0.05)
    assert [round(ls_db, 1), round(genie_db, 1)] == stated
