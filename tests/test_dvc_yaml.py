"""dvc.yaml declares every module a stage imports, so a code change re-runs what it can change."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO

STAGES = {f"{where}:{name}": stage
          for where in ("dvc.yaml", "frontier/dvc.yaml", "link/dvc.yaml")
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
    module = stage["cmd"].split()[2]  # python -m stages.<name> [args]
    files = {m.replace(".", "/") + ".py" for m in imported(module)}
    missing = sorted(files - set(stage["deps"]))
    assert not missing, f"stage {name}: imports {missing} without declaring them in deps"
