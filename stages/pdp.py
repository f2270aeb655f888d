"""Stage `pdp_sources@<Scenario>` / `pdp_targets@<Scenario>`: one scenario's PDPs, ready to train on.

    python -m stages.pdp <Scenario> sources|targets

Draws the scenario's PDPs from Sionna or reads its file (as `sites` resolved it into
``data/sites/<Scenario>/``), validates and normalises them, cuts taps beyond the CP, drops exact
duplicates and splits by PDP. Writes ``data/processed/<group>/<Scenario>.npz`` (the base trains on
the ``sources`` folder, so a target's data is not its dependency) and the scenario's statistics,
``reports/pdp_stats/<Scenario>.json``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from chanest import config
from chanest.channel.pdp import check_scenario
from chanest.channel.preprocess import GROUPS, split_config, preprocess, save_processed, stats
from chanest.channel.sites import Site
from chanest.errors import InputError
from chanest.utils import cli
from chanest.utils.io import write_json
from chanest.utils.params import load_params

SITES, PROCESSED, STATS = Path("data/sites"), Path("data/processed"), Path("reports/pdp_stats")
log = logging.getLogger("stages.pdp")


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[2] not in GROUPS:
        raise InputError(f"usage: python -m stages.pdp <Scenario> {'|'.join(GROUPS)}")
    scenario, group = check_scenario(sys.argv[1]), sys.argv[2]
    params = load_params()
    seed = config.seed(params)
    split = split_config(params)
    site = Site.read(SITES / scenario)
    processed = preprocess(scenario, site.load(seed), config.ofdm(params).cp_s, split, seed)
    save_processed(PROCESSED / group / f"{scenario}.npz", processed)
    write_json(STATS / f"{scenario}.json", stats(processed))
    log.info("%s (%s): %s", scenario, site.describe(), stats(processed))


if __name__ == "__main__":
    cli.run(main)
