"""Operating points (chanest.studies.points): one SNR per scenario, every method with paired intervals."""

from __future__ import annotations

import numpy as np
import pytest

from chanest.evaluation.evaluate import TestErrors
from chanest.utils.params import ParamsError, from_section
from chanest.channel.pdp import PDPError
from chanest.studies.points import PointsParams, summarise, table


def point(rng: np.random.Generator, snr_db: float = 21.7, lora_db: float = 0.5) -> TestErrors:
    """60 PDPs x 10 realisations at one SNR; genie 8 dB below LS, base 2 dB above the genie,
    LoRA ``lora_db`` below the base on every sample (plus 1% noise)."""
    n_pdp, per = 60, 10
    pdp = np.repeat(np.arange(n_pdp), per)
    energy = rng.uniform(2000, 4000, len(pdp))
    hard = rng.lognormal(0.0, 0.8, n_pdp)[pdp]
    genie = energy * hard * 10 ** (-(snr_db + 8) / 10)
    base = genie * 10 ** 0.2 * rng.lognormal(0.0, 0.2, len(pdp))
    err = {"ls": energy * 10 ** (-snr_db / 10), "lmmse_stat": genie * 4, "lmmse_genie": genie, "base": base,
           "lora": base * 10 ** (-lora_db / 10) * rng.lognormal(0.0, 0.01, len(pdp))}
    return TestErrors("InF_Los", np.arange(len(pdp)), np.full(len(pdp), snr_db, np.float32), pdp, energy, err)


def test_summarise_gives_known_nmse_gaps_and_a_tight_paired_gain():
    m = summarise(point(np.random.default_rng(1)), n_boot=1000, seed=7)
    assert m["snr_db"] == pytest.approx(21.7) and m["n_samples"] == 600 and m["test_pdps"] == 60
    assert m["ls"]["nmse_db"] == pytest.approx(-21.7, abs=1e-3)  # LS errors are exactly -SNR here
    assert m["lmmse_genie"]["gap_to_genie_db"] == 0.0 and m["lmmse_genie"]["gap_to_genie_ci_db"] == [0.0, 0.0]
    assert m["lmmse_stat"]["gap_to_genie_db"] == pytest.approx(6.02, abs=0.01)
    lo, hi = m["lora_gain_ci_db"]
    assert m["lora_gain_db"] == pytest.approx(0.5, abs=0.01)
    assert 0.45 < lo <= m["lora_gain_db"] <= hi < 0.55  # paired: tight
    blo, bhi = m["base"]["nmse_ci_db"]
    assert blo < m["base"]["nmse_db"] < bhi and bhi - blo > 5 * (hi - lo)  # unpaired: PDPs differ a lot


def test_a_zero_gain_gets_an_interval_that_includes_zero_and_the_table_has_a_row_per_method():
    m = summarise(point(np.random.default_rng(2), lora_db=0.0), n_boot=1000, seed=7)
    lo, hi = m["lora_gain_ci_db"]
    assert lo < 0.0 < hi
    rows = table({"InF_Los": m})
    assert list(rows.method) == ["ls", "lmmse_stat", "lmmse_genie", "base", "lora"]
    assert (rows.ci_low <= rows.nmse_db).all() and (rows.nmse_db <= rows.ci_high).all()


def test_two_snrs_are_not_one_operating_point():
    e = point(np.random.default_rng(3))
    e.snr_db[:10] = 6.2
    with pytest.raises(ValueError, match="one SNR"):
        summarise(e, n_boot=100, seed=7)


@pytest.mark.parametrize("section, match", [
    ({"snr_db": {}}, "snr_db is empty"),
    ({"snr_db": {"Fac tory": 10.0}}, "is not safe"),
    ({"snr_db": {"InF_Los": "high"}}, "points.snr_db.InF_Los"),
    ({"snr_db": {"InF_Los": 10.0}, "n_samples": 1}, "n_samples"),
])
def test_bad_points_params_name_the_key(section, match):
    with pytest.raises((ParamsError, PDPError), match=match):
        from_section(PointsParams, section, "points")
