"""Stage `pdp`: write data/raw/PDP_<Scenario>.mat for every scenario, from Sionna or your files."""

from __future__ import annotations

import logging
from pathlib import Path

from chanest import cli, config
from chanest.params import from_section, get, load_params
from chanest.pdp import SCENARIOS, mat_filename, read_mat, write_mat

OUT = Path("data/raw")
log = logging.getLogger("stages.pdp")


def main() -> None:
    params = load_params()
    p = from_section(config.PDPParams, get(params, "pdp"), "pdp")
    seed = config.seed(params)
    for scenario in config.all_scenarios(params):
        if p.source == "mat_dir":
            pdps = read_mat(Path(p.mat_dir) / mat_filename(scenario))
        else:
            from chanest.tr38901 import generate_pdps  # Sionna import is slow: only when used

            # seeded per scenario, not per list position: a scenario's PDPs do not change when
            # scenarios are added to or removed from params
            pdps = generate_pdps(scenario, p.n_drops, p.carrier_ghz * 1e9,
                                 seed + 1000 * SCENARIOS.index(scenario),
                                 inf_subscenario=p.inf_subscenario)
        write_mat(OUT / mat_filename(scenario), pdps)
        log.info("%s: %d PDPs from %s", scenario, len(pdps), p.source)


if __name__ == "__main__":
    cli.run(main)
