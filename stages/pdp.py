"""Stage `pdp`: write data/raw/PDP_<Scenario>.mat for every scenario, each from its own source."""

from __future__ import annotations

import logging
from pathlib import Path

from chanest import config
from chanest.channel.pdp import mat_filename, write_mat
from chanest.utils import cli
from chanest.utils.params import load_params

OUT = Path("data/raw")
log = logging.getLogger("stages.pdp")


def main() -> None:
    params = load_params()
    seed = config.seed(params)
    sites = config.sites(params)
    for name, site in sites.items():  # every file is there before any PDP is drawn
        site.check_file(f"sites.{name}.file" if name in (params.get("sites") or {}) else "pdp.mat_dir")
    for name, site in sites.items():
        pdps = site.load(seed)
        write_mat(OUT / mat_filename(name), pdps)
        log.info("%s: %d PDPs from %s", name, len(pdps), site.describe())


if __name__ == "__main__":
    cli.run(main)
