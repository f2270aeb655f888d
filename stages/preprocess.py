"""Stage `preprocess`: validate, normalise, de-duplicate and split; PDP statistics and figure."""

from __future__ import annotations

import logging
from pathlib import Path

from chanest.utils import cli
from chanest import config
from chanest.evaluation import plots
from chanest.utils.io import write_json
from chanest.utils.params import from_section, get, load_params
from chanest.channel.pdp import mat_filename, read_mat
from chanest.channel.preprocess import SplitConfig, preprocess, save_processed, stats

RAW, OUT = Path("data/raw"), Path("data/processed")
STATS, FIGURE = Path("reports/pdp_stats.json"), Path("reports/figures/delay_spread_cdf.png")
log = logging.getLogger("stages.preprocess")


def main() -> None:
    params = load_params()
    split = from_section(SplitConfig, get(params, "preprocess.split"), "preprocess.split")
    cp_s = config.ofdm(params).cp_s
    report, spreads = {}, {}
    for scenario in config.all_scenarios(params):
        processed = preprocess(scenario, read_mat(RAW / mat_filename(scenario)), cp_s, split,
                               config.seed(params))
        save_processed(OUT / f"{scenario}.npz", processed)
        report[scenario] = stats(processed)
        spreads[scenario] = processed.pdps.rms_delay_spread_s() * 1e9
        log.info("%s: %s", scenario, report[scenario])
    write_json(STATS, report)
    plots.delay_spread_cdf(spreads, FIGURE)


if __name__ == "__main__":
    cli.run(main)
