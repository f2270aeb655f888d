"""dvc.yaml declares every module a stage imports, so a code change re-runs what it can change."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO

PIPELINES = ("dvc.yaml", "frontier/dvc.yaml", "link/dvc.yaml", "research/dvc.yaml")
STAGES = {f"{where}:{name}": stage
          for where in PIPELINES
          for name, stage in yaml.safe_load((REPO / where).read_text())["stages"].items()}
IMPORT = re.compile(r"^\s*(?:from (chanest(?:\.\w+)?) import ([\w, ]+)|import (chanest\.\w+))", re.M)


def imported(module: str, seen: set[str] | None = None) -> set[str]:
    """Source files of ``module`` and of every chanest module it imports, transitively
    (top-level and function-level imports alike)."""
    seen = set() if seen is None else seen
    path = REPO / (module.replace(".", "/") + ".py")
    if module in seen or not path.is_file():
        return seen
    seen.add(module)
    for package, names, plain in IMPORT.findall(path.read_text()):
        if package == "chanest":
            for name in names.split(","):
                imported(f"chanest.{name.strip()}", seen)
        else:
            imported(package or plain, seen)
    return seen


@pytest.mark.parametrize("name", list(STAGES))
def test_every_imported_module_is_a_declared_dependency(name):
    stage = STAGES[name].get("do", STAGES[name])
    words = stage["cmd"].split()
    module = words[words.index("-m") + 1]  # [PYTHONPATH=..] python -m stages.<name> [args]
    # deps are relative to the stage's working directory: the dvc.yaml's folder, or its wdir
    where = REPO / name.split(":")[0]
    wdir = (where.parent / stage.get("wdir", ".")).resolve()
    declared = {(wdir / d).resolve() for d in stage["deps"] if isinstance(d, str)}
    files = {(REPO / (m.replace(".", "/") + ".py")).resolve() for m in imported(module)}
    missing = sorted(str(f.relative_to(REPO)) for f in files - declared)
    assert not missing, f"stage {name}: imports {missing} without declaring them in deps"


@pytest.mark.parametrize("where", PIPELINES)
def test_chart_titles_are_safe_in_the_plots_page(where):
    """A top-level plot's id becomes a JavaScript string and an element id on the `dvc plots`
    page (``vegaEmbed('#<id>', spec)``): a quote in it breaks the page."""
    for entry in yaml.safe_load((REPO / where).read_text()).get("plots", []):
        title = entry if isinstance(entry, str) else next(iter(entry))
        assert re.fullmatch(r"[\w .,:()%/@+-]+", title), f"{where}: plot id {title!r}"
