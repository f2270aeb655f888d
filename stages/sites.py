"""Stage `sites`: where each scenario's PDPs come from, one folder per scenario (no PDP drawn here).

Writes ``data/sites/<Scenario>/source.json`` (the resolved source: a Sionna TR 38.901 model with its
settings, or a file) and, for a file site, a copy of its file. Each scenario's `pdp_*` stage
depends on its own folder only, so a change to one site, or a scenario added to a list, leaves the
folders (and so the stages) of the others as they were.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from chanest import config
from chanest.utils import cli
from chanest.utils.params import load_params

OUT = Path("data/sites")
log = logging.getLogger("stages.sites")


def main() -> None:
    params = load_params()
    sites = config.sites(params)
    for name, site in sites.items():  # every file is there before anything is written
        site.check_file(f"sites.{name}.file" if name in (params.get("sites") or {}) else "pdp.mat_dir")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sites.", dir=OUT.parent))
    try:
        for name, site in sites.items():
            site.write(tmp / name)
            log.info("%s: %s", name, site.describe())
        shutil.rmtree(OUT, ignore_errors=True)
        tmp.rename(OUT)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


if __name__ == "__main__":
    cli.run(main)
