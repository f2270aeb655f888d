"""dvc.yaml declares every module a stage imports, so a code change re-runs what it can change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import PIPELINES, REPO

STAGES = {f"{where}:{name}": stage
          for where in PIPELINES
          for name, stage in yaml.safe_load((REPO / where).read_text())["stages"].items()}
IMPORT = re.compile(r"^\s*(?:from (chanest(?:\.\w+)*) import \(?([\w, ]+)|import (chanest(?:\.\w+)+))", re.M)


def source(module: str) -> Path | None:
    """The file Python runs for ``module``: ``a/b.py`` or the package's ``a/b/__init__.py``."""
    path = REPO / module.replace(".", "/")
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported(module: str, seen: dict[str, Path] | None = None) -> dict[str, Path]:
    """Source files of ``module`` and of every chanest module it imports, transitively
    (top-level and function-level imports alike), by module name."""
    seen = {} if seen is None else seen
    path = source(module)
    if module in seen or path is None:
        return seen
    seen[module] = path
    if module.startswith("chanest."):  # importing chanest.a.b runs chanest/__init__.py (the CPU
        imported(module.rsplit(".", 1)[0], seen)  # pin) and chanest/a/__init__.py first
    for package, names, plain in IMPORT.findall(path.read_text()):
        if package:
            imported(package, seen)
            for name in names.split(","):  # `from chanest.channel import pdp`: a submodule
                imported(f"{package}.{name.split(' as ')[0].strip()}", seen)
        else:
            imported(plain, seen)
    return seen


def covered(path: Path, declared: set[Path]) -> bool:
    """A file is a declared dependency itself or inside a declared folder (a package)."""
    return any(d == path or d in path.parents for d in declared)


@pytest.mark.parametrize("name", list(STAGES))
def test_every_imported_module_is_a_declared_dependency(name):
    stage = STAGES[name].get("do", STAGES[name])
    words = stage["cmd"].split()
    module = words[words.index("-m") + 1]  # [PYTHONPATH=..] python -m stages.<name> [args]
    # deps are relative to the stage's working directory: the dvc.yaml's folder, or its wdir
    where = REPO / name.split(":")[0]
    wdir = (where.parent / stage.get("wdir", ".")).resolve()
    declared = {(wdir / d).resolve() for d in stage["deps"] if isinstance(d, str)}
    # the top-level chanest/__init__.py only maps the public API's names to their modules (lazily)
    files = {f.resolve() for m, f in imported(module).items() if m != "chanest"}
    missing = sorted(str(f.relative_to(REPO)) for f in files if not covered(f, declared))
    assert not missing, f"stage {name}: imports {missing} without declaring them in deps"


@pytest.mark.parametrize("where", PIPELINES)
def test_chart_titles_are_safe_in_the_plots_page(where):
    """A top-level plot's id becomes a JavaScript string and an element id on the `dvc plots`
    page (``vegaEmbed('#<id>', spec)``): a quote in it breaks the page."""
    for entry in yaml.safe_load((REPO / where).read_text()).get("plots", []):
        title = entry if isinstance(entry, str) else next(iter(entry))
        assert re.fullmatch(r"[\w .,:()%/@+-]+", title), f"{where}: plot id {title!r}"


@pytest.mark.parametrize("module", ["stages.sites", "stages.pdp", "stages.report", "stages.plot"])
def test_stages_that_compute_nothing_with_torch_do_not_load_it(module):
    """torch's import is a second of every stage process; the stages that only read params, PDPs
    or evaluation parts stay without it (a `dvc exp run` runs report and plot every time)."""
    import subprocess
    import sys

    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", module


@pytest.mark.parametrize("name", list(STAGES))
def test_no_stage_declares_chanest_code_it_does_not_import(name):
    """The converse: a declared ``chanest`` package or module is one the stage imports, so a change
    to code a stage never runs (a log line of the training loop, say) does not re-run it."""
    stage = STAGES[name].get("do", STAGES[name])
    words = stage["cmd"].split()
    module = words[words.index("-m") + 1]
    where = REPO / name.split(":")[0]
    wdir = (where.parent / stage.get("wdir", ".")).resolve()
    files = {f.resolve() for m, f in imported(module).items()}
    code = [d for d in stage["deps"] if isinstance(d, str) and (wdir / d).resolve().is_relative_to(REPO / "chanest")]
    unused = [d for d in code if not any(f == (wdir / d).resolve() or (wdir / d).resolve() in f.parents for f in files)]
    assert not unused, f"stage {name}: declares {unused} but imports nothing of them"


def test_the_data_stages_do_not_depend_on_the_estimators_or_the_training_loop():
    """A change to chanest/estimators or chanest/training re-runs no data stage of any pipeline."""
    for name, stage in STAGES.items():
        words = stage.get("do", stage)["cmd"].split()
        if words[words.index("-m") + 1] in ("stages.sites", "stages.pdp"):
            deps = " ".join(d for d in stage.get("do", stage)["deps"] if isinstance(d, str))
            assert "chanest/estimators" not in deps and "chanest/training" not in deps, name
