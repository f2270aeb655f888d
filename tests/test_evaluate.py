"""Evaluation statistics: the PDP bootstrap, paired gains, and joining evaluation parts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from chanest.evaluation import stats
from chanest.evaluation.evaluate import TestErrors, build_report, cross_mask


def clustered(rng: np.random.Generator, n_clusters: int = 50, per: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Samples with a cluster effect (variance 1) plus noise (variance 1): intra-class corr. 0.5."""
    clusters = np.repeat(np.arange(n_clusters), per)
    x = rng.standard_normal(n_clusters)[clusters] + rng.standard_normal(n_clusters * per)
    return clusters, x


def test_cluster_weights_resample_whole_clusters():
    rng = np.random.default_rng(0)
    clusters = np.array([3, 3, 7, 9, 9, 9])
    w = stats.cluster_weights(clusters, 500, rng)
    assert w.shape == (500, 6)
    assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 3] == w[:, 5])  # a cluster moves as one
    per_cluster = w[:, [0, 2, 3]]
    assert np.all(per_cluster.sum(axis=1) == 3)  # as many clusters drawn as there are
    assert abs(per_cluster.mean() - 1.0) < 0.05


def test_cluster_bootstrap_covers_the_mean_where_an_iid_interval_does_not():
    rng = np.random.default_rng(1)
    covered, ratio = 0, []
    for _ in range(200):
        clusters, x = clustered(rng)
        w = stats.cluster_weights(clusters, 400, rng)
        lo, hi = stats.interval((w @ x) / w.sum(axis=1))
        covered += lo <= 0.0 <= hi
        ratio.append((hi - lo) / (2 * 1.96 * x.std(ddof=1) / np.sqrt(len(x))))
    # design effect 1 + (8 - 1) * 0.5 = 4.5: the honest interval is ~sqrt(4.5) = 2.1x the iid one
    assert 0.89 <= covered / 200 <= 0.99
    assert 1.7 < np.mean(ratio) < 2.5


def parts(rng: np.random.Generator, lora_factor: float) -> tuple[dict, dict]:
    """A source and a target with 40 PDPs x 10 realisations at 2 SNRs; the target's LoRA errors are
    ``lora_factor`` times the base's on every sample (plus small noise)."""
    n_pdp, per, snrs = 40, 10, (0.0, 10.0)
    reference, adapters = {}, {"InF_Los": {}}
    for scenario in ("UMa_Los", "InF_Los"):
        pdp = np.tile(np.repeat(np.arange(n_pdp), per), len(snrs))
        snr = np.repeat(np.array(snrs, dtype=np.float32), n_pdp * per)
        energy = rng.uniform(500, 700, len(snr))
        hard = rng.lognormal(0.0, 1.0, n_pdp)[pdp]  # some PDPs are much harder than others
        err = {"ls": energy * 10 ** (-snr / 10) * 1.3,
               "lmmse_genie": energy * hard * 10 ** (-snr / 10) * 0.05}
        err["lmmse_stat"] = err["lmmse_genie"] * 3
        err["base"] = err["lmmse_genie"] * 1.5 * rng.lognormal(0.0, 0.3, len(snr))
        full = TestErrors(scenario, np.arange(len(snr)), snr, pdp, energy, err)
        reference[scenario] = full
        lora = {"lora": err["base"] * lora_factor * rng.lognormal(0.0, 0.01, len(snr))}
        if scenario == "InF_Los":
            adapters["InF_Los"][scenario] = dataclasses.replace(full, errors=lora, meta={"trainable_parameters": 7})
        else:
            m = cross_mask(snr, 50)
            adapters["InF_Los"][scenario] = dataclasses.replace(
                full, index=np.flatnonzero(m), snr_db=snr[m], pdp_index=pdp[m], energy=energy[m],
                errors={"lora": lora["lora"][m]})
    return reference, adapters


def test_paired_gain_interval_is_tight_although_each_gap_is_uncertain():
    reference, adapters = parts(np.random.default_rng(2), lora_factor=10 ** -0.01)  # a 0.1 dB gain
    m = build_report(reference, adapters, cross_n_samples=50, n_boot=1000, seed=7).metrics["InF_Los"]
    lo, hi = m["lora_gain_ci_db"]
    assert m["lora_gain_db"] == pytest.approx(0.1, abs=0.01)
    assert 0.0 < lo <= m["lora_gain_db"] <= hi < 0.15  # paired: the gain is claimed
    glo, ghi = m["base"]["gap_to_genie_ci_db"]
    assert ghi - glo > 5 * (hi - lo)  # unpaired gaps are far less certain than the paired gain
    assert m["lmmse_genie"]["gap_to_genie_ci_db"] == [0.0, 0.0]
    assert m["trainable_parameters"] == 7


def test_a_gain_inside_the_noise_gets_an_interval_that_includes_zero():
    reference, adapters = parts(np.random.default_rng(3), lora_factor=1.0)
    m = build_report(reference, adapters, cross_n_samples=50, n_boot=1000, seed=7).metrics["InF_Los"]
    lo, hi = m["lora_gain_ci_db"]
    assert lo < 0.0 < hi


def test_report_rows_and_cross_table():
    reference, adapters = parts(np.random.default_rng(4), lora_factor=0.9)
    rep = build_report(reference, adapters, cross_n_samples=50, n_boot=200, seed=7)
    assert set(rep.rows.method[rep.rows.scenario == "InF_Los"]) == {"ls", "lmmse_stat", "lmmse_genie", "base", "lora"}
    assert set(rep.rows.method[rep.rows.scenario == "UMa_Los"]) == {"ls", "lmmse_stat", "lmmse_genie", "base"}
    ls = rep.rows[(rep.rows.method == "ls") & (rep.rows.snr_db == 10.0)].nmse_db
    assert np.allclose(ls, 10 * np.log10(1.3) - 10, atol=1e-3)
    assert len(rep.cross) == 4 and set(rep.cross.model) == {"base", "lora:InF_Los"}


def test_parts_from_other_test_samples_are_refused():
    reference, adapters = parts(np.random.default_rng(5), lora_factor=0.9)
    stale = adapters["InF_Los"]["UMa_Los"]
    adapters["InF_Los"]["UMa_Los"] = dataclasses.replace(stale, pdp_index=stale.pdp_index[::-1].copy())
    with pytest.raises(ValueError, match="other test samples of UMa_Los"):
        build_report(reference, adapters, cross_n_samples=50, n_boot=200, seed=7)
    adapters["InF_Los"]["UMa_Los"] = stale
    with pytest.raises(ValueError, match="cross subset"):
        build_report(reference, adapters, cross_n_samples=40, n_boot=200, seed=7)


def test_test_errors_round_trip(tmp_path):
    reference, _ = parts(np.random.default_rng(6), lora_factor=0.9)
    a = dataclasses.replace(reference["UMa_Los"], meta={"trainable_parameters": 3})
    a.save(tmp_path / "x.npz")
    b = TestErrors.load(tmp_path / "x.npz")
    assert b.scenario == a.scenario and b.meta == a.meta and b.errors.keys() == a.errors.keys()
    assert all(np.array_equal(a.errors[k], b.errors[k]) for k in a.errors)
    assert np.array_equal(a.pdp_index, b.pdp_index) and np.array_equal(a.snr_db, b.snr_db)


def test_a_method_the_report_does_not_know_fails_naming_it():
    """An evaluation part with a method outside METHODS stops the report (it would otherwise be a
    row that silently never appears)."""
    reference, adapters = parts(np.random.default_rng(6), lora_factor=0.9)
    ref = reference["UMa_Los"]
    reference["UMa_Los"] = dataclasses.replace(ref, errors={**ref.errors, "resnet": ref.errors["base"]})
    with pytest.raises(ValueError, match=r"UMa_Los: the evaluation parts hold \['resnet'\]"):
        build_report(reference, adapters, cross_n_samples=50, n_boot=200, seed=7)


def test_paired_db_is_the_test_set_then_its_pdp_resamples_and_estimate_rounds_both():
    """Row 0 of PairedDB is the plain per-SNR mean NMSE in dB; ``mean_over`` averages the SNRs of a
    range; ``estimate`` reports row 0 and the percentile interval of the replicates."""
    from chanest.evaluation import stats

    rng = np.random.default_rng(8)
    snr = np.repeat(np.array([-10.0, 0.0, 10.0, 20.0]), 50)
    err = 10 ** (-snr / 10) * rng.uniform(0.5, 1.5, len(snr))
    paired = stats.PairedDB(np.ones(len(snr)), snr, rng.integers(0, 20, len(snr)), 300, rng)
    db = paired(err)
    assert db.shape == (301, 4) and list(paired.snrs) == [-10.0, 0.0, 10.0, 20.0]
    plain = [10 * np.log10(err[snr == s].mean()) for s in paired.snrs]
    np.testing.assert_allclose(db[0], plain, rtol=1e-12)
    np.testing.assert_allclose(paired.mean_over(db, (0.0, 30.0))[0], np.mean(plain[1:]), rtol=1e-12)
    value, (low, high) = stats.estimate(paired.mean_over(db, (0.0, 30.0)))
    assert value == round(float(np.mean(plain[1:])), 3) and low < value < high


def test_one_table_of_methods_drives_every_list_and_style():
    """The report's rows, the learned and adapted lists, the frontier's order, the links' methods
    and the figures' styles all come from chanest/evaluation/methods.py; an unknown name fails."""
    from chanest.errors import InputError
    from chanest.evaluation import methods
    from chanest.evaluation.plots import LINK_STYLE, METHOD_STYLE
    from chanest.evaluation.report import LEARNED, METHODS
    from chanest.receiver.grid_link import METHODS as GRID_LINK
    from chanest.studies.frontier_table import ORDER
    from chanest.studies.link import METHODS as LINK
    from chanest.studies.points import ADAPTED

    assert METHODS == tuple(methods.TABLE) and list(METHOD_STYLE) == list(METHODS)
    assert LEARNED == ("base", *ADAPTED) and ORDER == ("base", *ADAPTED) == ("base", "lora", "full_ft", "scratch")
    assert {m for m in LINK + GRID_LINK if m != "perfect"} <= set(METHODS) and set(LINK_STYLE) >= set(GRID_LINK)
    assert METHOD_STYLE["lmmse_genie"] == {"color": "#000000", "marker": "", "linestyle": "--",
                                           "label": "genie LMMSE (bound)"}
    with pytest.raises(InputError, match="unknown method 'resnet'; the methods are ls, lmmse_stat"):
        methods.style("resnet")
    with pytest.raises(InputError, match="unknown method 'lmse_stat'"):
        methods.subset("ls", "lmse_stat")


def test_a_plugin_method_is_checked_and_placed_before_the_genie(monkeypatch):
    """A module of chanest/evaluation/plugins/ becomes a classical row before the genie bound, and
    a module that misses a field, reuses a name or gives a bad colour fails naming its file."""
    import types

    from chanest.errors import InputError
    from chanest.evaluation import methods, plugins

    def module(**fields):
        mod = types.ModuleType("mine")
        mod.__file__ = "chanest/evaluation/plugins/mine.py"
        fields = {"NAME": "mine", "LABEL": "mine", "COLOR": "#123456", "MARKER": "*",
                  "build": lambda context: None} | fields
        for k, v in fields.items():
            if v is not None:
                setattr(mod, k, v)
        return mod

    monkeypatch.setattr(plugins, "discover", lambda: [module()])
    rows, builders = methods._plugin_methods()
    assert rows == (methods.Method("mine", "classical", "mine", "#123456", "*"),) and set(builders) == {"mine"}
    for bad, match in [({"build": None}, "missing build"), ({"NAME": "nomp"}, "NAME 'nomp'"),
                       ({"NAME": "my method"}, "NAME 'my method'"), ({"COLOR": "olive"}, "COLOR 'olive'")]:
        monkeypatch.setattr(plugins, "discover", lambda bad=bad: [module(**bad)])
        with pytest.raises(InputError, match=f"plugins/mine.py: .*{match}"):
            methods._plugin_methods()
    # with no plugin module (the repository's state) the table is the built-in one, in its order
    assert tuple(methods.TABLE) == ("ls", "lmmse_stat", "nomp", "lmmse_genie", "base", "lora", "full_ft", "scratch")
