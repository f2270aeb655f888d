"""research/params.yaml and research/full-size.yaml: the research's numerology and data, and the
full-size variant differs only in what a GPU buys (model size, steps, batches, sample counts)."""

from __future__ import annotations

import yaml

from chanest import config
from conftest import REPO

CPU = yaml.safe_load((REPO / "research/params.yaml").read_text())
FULL = yaml.safe_load((REPO / "research/full-size.yaml").read_text())


def test_research_params_are_the_research_numerology_on_the_committed_files():
    ofdm = config.ofdm(CPU)
    assert ofdm.subcarrier_spacing_hz == 120e3 and ofdm.n_subcarriers == 3072 and ofdm.cp_s == 5.9e-7
    assert len(ofdm.pilot_indices) == 512 and ofdm.pilot_spacing == 6
    assert CPU["pdp"]["source"] == "mat_dir"
    assert (REPO / "research" / CPU["pdp"]["mat_dir"]).resolve() == (REPO / "data/nyusim-28ghz").resolve()
    assert CPU["points"]["snr_db"] == {"InF_Los": 21.7, "RMa_Los": 6.2}


def test_full_size_variant_changes_only_sizes():
    sized = {"model", "base", "lora", "eval", "points"}
    for section in set(CPU) | set(FULL):
        if section not in sized:
            assert FULL.get(section) == CPU.get(section), section
    assert FULL["model"]["d_model"] > CPU["model"]["d_model"] and FULL["base"]["steps"] > CPU["base"]["steps"]
    assert FULL["points"]["snr_db"] == CPU["points"]["snr_db"] and FULL["eval"]["snr_db"] == CPU["eval"]["snr_db"]
