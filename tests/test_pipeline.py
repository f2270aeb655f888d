"""End to end: the real `dvc repro` and `dvc exp run -S lora.r=...` on tiny params in a temp git repo."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import matplotlib.image
import numpy as np
import pytest

from conftest import PIPELINES, SOURCES, TARGETS, ran

pytestmark = pytest.mark.slow

def test_repro_runs_every_stage_and_writes_every_output(pipeline):
    stages = ({"sites", "train_base", "eval_lora", "report", "plot"}
              | {f"{stage}_sources@{s}" for stage in ("pdp", "eval_base") for s in SOURCES}
              | {f"{stage}_targets@{t}" for stage in ("pdp", "eval_base") for t in TARGETS}
              | {f"transfer@{t}" for t in TARGETS})
    assert ran(pipeline.first) == stages
    w = pipeline.work
    for path in ["data/sites/InF_Los/source.json", "data/sites/Factory_A/PDP_Factory_A.mat",
                 "data/processed/sources/UMa_Los.npz", "data/processed/targets/InF_Los.npz",
                 "models/base/model.safetensors", "models/base/config.json", "models/base_state.pt",
                 "reports/pdp_stats/UMa_Los.json", "reports/pdp_stats/Factory_A.json",
                 "reports/figures/eval/delay_spread_cdf.png", "reports/train_base.json",
                 "reports/live/train_base/metrics.json",
                 "reports/live/train_base/plots/metrics/val_nmse_db.tsv",
                 "reports/metrics.json", "reports/nmse_vs_snr.csv",
                 "reports/cross_scenario.csv", "reports/figures/eval/training_curves.png",
                 "reports/figures/eval/lora_gain.png", "reports/figures/eval/cross_scenario.png"]:
        assert (w / path).is_file(), path
    for t in TARGETS:
        for path in [f"models/lora/{t}/adapter_config.json", f"models/lora/{t}/adapter_model.safetensors",
                     f"models/lora/{t}/merged/model.safetensors", f"reports/transfer/{t}.json",
                     f"reports/live/transfer_{t}/metrics.json",
                     f"reports/live/transfer_{t}/plots/metrics/lr.tsv",
                     f"reports/live/transfer_{t}/plots/metrics/full_ft/val_nmse_db.tsv",
                     f"reports/figures/eval/nmse_{t}.png"]:
            assert (w / path).is_file(), path
    for s in SOURCES:
        assert (w / f"reports/live/train_base/plots/metrics/{s}/val_nmse_db.tsv").is_file(), s
    assert not (w / "reports/curves").exists()  # the hand-written CSV curves are gone
    status = pipeline.sh("dvc", "status", "dvc.yaml")  # (the frontier's stages are not run by default)
    assert "up to date" in status


def test_a_site_of_ones_own_is_read_from_its_file_adapted_evaluated_and_plotted(pipeline):
    """Factory_A (a .mat file beside Sionna sources) goes through every stage under its own name."""
    from chanest.channel.pdp import read_mat
    from conftest import SITE_FILE

    w = pipeline.work
    got, want = read_mat(w / "data/sites/Factory_A/PDP_Factory_A.mat"), read_mat(SITE_FILE[1])
    assert len(got) == len(want)  # the site's file, copied as is
    assert all(np.array_equal(a.delays_s, b.delays_s) and np.array_equal(a.powers, b.powers)
               for a, b in zip(got, want))
    assert "Factory_A: file data/site_files/PDP_Factory_A.mat" in pipeline.first
    stats = json.loads((w / "reports/pdp_stats/Factory_A.json").read_text())
    assert stats["n_raw"] == len(want) and stats["n"] == len(want) - stats["n_duplicates"]
    metrics = json.loads((w / "reports/metrics.json").read_text())["Factory_A"]
    assert {"ls", "lmmse_genie", "base", "lora", "full_ft", "scratch"} <= set(metrics)
    assert metrics["lora"]["gap_to_genie_db"] > 0  # the genie stays a bound on the site too
    assert (w / "reports/figures/eval/nmse_Factory_A.png").stat().st_size > 10_000
    assert "Factory_A" in (w / "reports/nmse_vs_snr.csv").read_text()
    inspect = pipeline.sh("python", "-m", "chanest.estimators.inspect_adapter", "models/lora/Factory_A")
    assert '"loads_cleanly": true' in inspect and '"base_matches": true' in inspect


def test_second_repro_runs_nothing(pipeline):
    assert ran(pipeline.second) == set()


def test_rerunning_the_source_stage_writes_identical_bytes(pipeline):
    assert "up to date" in pipeline.status_after_rerun, pipeline.status_after_rerun


def test_changing_lora_r_reruns_only_what_depends_on_the_adapters(pipeline):
    # not the data, train_base, nor eval_base (baselines and the base model)
    assert ran(pipeline.exp) == {f"transfer@{t}" for t in TARGETS} | {"eval_lora", "report", "plot"}


def test_a_new_site_and_a_change_of_its_file_run_its_own_chain_only(pipeline):
    """One base, many sites: adding a target, or re-measuring it, runs that site's data, its
    baselines and its adapter, plus the shared sites / eval_lora / report / plot, and no stage of the
    sources or of the other targets."""
    chain = {"pdp_targets@Plant_B", "eval_base_targets@Plant_B", "transfer@Plant_B"}
    shared = {"sites", "eval_lora", "report", "plot"}
    assert ran(pipeline.site_added) == chain | shared
    assert ran(pipeline.site_changed) == chain | shared
    # and removed again: the shared stages only (`sites` comes back from DVC's run-cache)
    assert {"eval_lora", "report", "plot"} <= ran(pipeline.site_removed) <= shared
    assert "Plant_B: file data/site_files/PDP_Plant_B.mat" in pipeline.site_added


def test_a_method_of_ones_own_is_one_file_evaluated_reported_and_plotted(pipeline):
    """One module dropped in chanest/evaluation/plugins/ (conftest.PLUGIN), nothing else edited:
    `dvc repro` re-runs the evaluation, report and figures and no training; the method has its
    rows on every scenario, paired against the genie on the same samples, in the charts' data
    and in the PNGs' legends' colour."""
    from conftest import PLUGIN

    w = pipeline.plugin_work
    assert (w / PLUGIN[0]).is_file() and "ls_nearest" not in (pipeline.work / "reports/metrics.json").read_text()
    evals = {f"eval_base_sources@{s}" for s in SOURCES} | {f"eval_base_targets@{t}" for t in TARGETS}
    assert ran(pipeline.plugin) == evals | {"eval_lora", "report", "plot"}
    metrics = json.loads((w / "reports/metrics.json").read_text())
    assert set(metrics) == set(SOURCES) | set(TARGETS)
    for scenario, m in metrics.items():
        assert list(m)[:4] == ["ls", "lmmse_stat", "nomp", "ls_nearest"], scenario  # before the genie
        # held, not interpolated: no better than LS + linear, and never below the genie
        assert m["ls_nearest"]["gap_to_genie_db"] > m["ls"]["gap_to_genie_db"] - 0.5 > 0, scenario
    rows = list(csv.DictReader(io.StringIO((w / "reports/nmse_vs_snr.csv").read_text())))
    assert {r["scenario"] for r in rows if r["method"] == "ls_nearest"} == set(SOURCES) | set(TARGETS)
    png = matplotlib.image.imread(w / f"reports/figures/eval/nmse_{TARGETS[0]}.png")[..., :3]
    olive = np.array([0xbc, 0xbd, 0x22]) / 255  # its COLOR, drawn
    assert (np.abs(png - olive).max(-1) < 0.02).sum() > 50


def test_metrics_diff_and_exp_show_list_the_changed_metrics(pipeline):
    diff = json.JSONDecoder().raw_decode(pipeline.metrics_diff[pipeline.metrics_diff.index("{"):])[0]
    for t in TARGETS:
        tp = diff["reports/metrics.json"][f"{t}.trainable_parameters"]
        assert tp["new"] == tp["old"] // 2  # r 4 -> 2 halves the adapter
        assert "trainable_parameters" in "".join(diff[f"reports/transfer/{t}.json"])
    assert not any(k.startswith("UMa_Los.ls") for k in diff["reports/metrics.json"])  # LS unchanged
    header = next(csv.reader(pipeline.exp_show.splitlines()))
    # (with research/params.yaml beside it, DVC names each param with its file)
    assert {"lora.r", "params.yaml:lora.r"} & set(header), header
    assert any("lmmse_genie" in h for h in header)


def test_plots_show_draws_every_scenario_without_missing_fields(pipeline):
    assert "could not find" not in pipeline.plots and "failed" not in pipeline.plots.lower(), pipeline.plots
    html = (pipeline.work / "dvc_plots" / "index.html").read_text()
    for s in SOURCES + TARGETS:
        assert f'"scenario": "{s}", "method": "lmmse_genie"' in html, s  # in the NMSE vs SNR chart


def test_reports_have_the_documented_shape(pipeline):
    w = pipeline.work
    rows = list(csv.DictReader((w / "reports/nmse_vs_snr.csv").open()))
    assert list(rows[0])[:5] == ["scenario", "method", "snr_db", "nmse_db", "ci_db"]
    by = {(r["scenario"], r["method"], float(r["snr_db"])): float(r["nmse_db"]) for r in rows}
    for s in SOURCES + TARGETS:
        methods = {m for (sc, m, _) in by if sc == s}
        assert methods == ({"ls", "lmmse_stat", "nomp", "lmmse_genie", "base"}
                           | ({"lora", "full_ft", "scratch"} if s in TARGETS else set()))
        for snr in (0.0, 10.0, 20.0):
            assert by[s, "lmmse_genie", snr] <= by[s, "lmmse_stat", snr] + 0.05, (s, snr)
            if snr <= 10:  # (from ~24 training PDPs the scenario statistics can lose to LS at 20 dB)
                assert by[s, "lmmse_stat", snr] <= by[s, "ls", snr] + 0.1, (s, snr)
            assert abs(by[s, "ls", snr] + snr + 1) < 4  # LS+linear ~ -(SNR + 1) dB
    metrics = json.loads((w / "reports/metrics.json").read_text())
    assert set(metrics) == set(SOURCES + TARGETS)
    for t in TARGETS:
        assert {"lora_gain_db", "trainable_parameters", "lora", "base"} <= set(metrics[t])
        for method in ("lora", "full_ft", "scratch"):
            assert set(metrics[t][method]) == {"nmse_db_mean", "nmse_db_at_10", "nmse_db_at_20", "gap_to_genie_db",
                                               "gap_to_genie_ci_db", "ahead_of_nomp_db", "ahead_of_nomp_ci_db"}
            lo, hi = metrics[t][method]["ahead_of_nomp_ci_db"]  # paired with NOMP on the same samples
            assert lo <= metrics[t][method]["ahead_of_nomp_db"] <= hi
            lo, hi = metrics[t][method]["gap_to_genie_ci_db"]
            assert lo <= metrics[t][method]["gap_to_genie_db"] <= hi
        lo, hi = metrics[t]["lora_gain_ci_db"]
        assert lo <= metrics[t]["lora_gain_db"] <= hi and hi - lo > 0
        assert metrics[t]["lmmse_genie"]["gap_to_genie_db"] == 0
    cross = list(csv.DictReader((w / "reports/cross_scenario.csv").open()))
    assert len(cross) == (1 + len(TARGETS)) * len(SOURCES + TARGETS)
    for png in (w / "reports/figures/eval").glob("*.png"):
        img = matplotlib.image.imread(png)
        assert img.ndim == 3 and img.shape[0] > 100 and img.std() > 0.01, png


def test_split_evaluation_equals_evaluating_everything_in_one_process(pipeline):
    """Every model on every full test set in this one process, then the same report: equal to the
    metrics that eval_base_*, eval_lora and report wrote in their own processes."""
    import numpy as np

    from chanest import config
    from chanest.estimators.nomp import nomp_config
    from chanest.channel import data
    from chanest.estimators.baselines import StatLMMSE
    from chanest.estimators.checkpoint import load_estimator
    from chanest.evaluation.evaluate import baselines, build_report, cross_mask, evaluate
    from chanest.evaluation.evaluate import test_set as fixed_test_set
    from chanest.estimators.nomp import NOMP
    from chanest.estimators.lora import read_meta
    from chanest.utils.params import load_params
    from chanest.channel.preprocess import load_processed

    w = pipeline.work
    params = load_params(w / "params.yaml")
    ofdm, norm, ev = config.ofdm(params), config.normalisation(params), config.eval_params(params)
    models = {"base": load_estimator(w / "models/base")}
    for t in TARGETS:
        models[f"lora:{t}"] = load_estimator(w / f"models/lora/{t}/merged")
        models[f"full_ft:{t}"] = load_estimator(w / f"models/lora/{t}/full_ft")
        models[f"scratch:{t}"] = load_estimator(w / f"models/lora/{t}/scratch")
    reference, adapters = {}, {t: {} for t in TARGETS}
    for s in SOURCES + TARGETS:
        processed = w / "data/processed" / ("sources" if s in SOURCES else "targets")
        batch = fixed_test_set(data.sampler(processed, [s], "test", ofdm, norm, "cpu"), ev.snr_db,
                               ev.n_samples, ev.seed)
        stat = StatLMMSE.from_pdps(load_processed(processed, s, "train"), ofdm)
        methods = baselines(ofdm, stat, NOMP(ofdm, nomp_config(params))) | {
            k: (lambda b, m=m: m.eval()(b.h_ls, b.snr_db)) for k, m in models.items()}
        full = evaluate(s, methods, batch, chunk=10_000)
        reference[s] = dataclasses.replace(full, errors={k: full.errors[k] for k in
                                                         ("ls", "lmmse_stat", "nomp", "lmmse_genie", "base")})
        mask = cross_mask(full.snr_db, ev.cross_n_samples)
        for t in TARGETS:
            if t == s:
                meta = {"trainable_parameters": read_meta(w / f"models/lora/{t}")["trainable_parameters"]}
                adapters[t][s] = dataclasses.replace(full, meta=meta, errors={
                    "lora": full.errors[f"lora:{t}"], "full_ft": full.errors[f"full_ft:{t}"],
                    "scratch": full.errors[f"scratch:{t}"]})
            else:
                adapters[t][s] = dataclasses.replace(
                    full, index=np.flatnonzero(mask), snr_db=full.snr_db[mask], pdp_index=full.pdp_index[mask],
                    energy=full.energy[mask], errors={"lora": full.errors[f"lora:{t}"][mask]})
    one = build_report(reference, adapters, ev.cross_n_samples, ev.n_boot, ev.seed)
    written = json.loads((w / "reports/metrics.json").read_text())

    def leaves(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from leaves(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    a, b = dict(leaves(one.metrics)), dict(leaves(written))
    assert a.keys() == b.keys()
    for k in a:
        assert np.allclose(a[k], b[k], atol=2e-3, rtol=0), (k, a[k], b[k])


def test_exp_show_lists_the_live_training_metrics_and_dvclive_leaves_dvc_yaml_alone(pipeline):
    """dvclive's files (chanest.training.live) are declared in dvc.yaml: `dvc exp show` lists the training
    metrics, `dvc plots show` draws the per-step logs, and no dvc.yaml was written or changed."""
    w, sh = pipeline.work, pipeline.sh
    rows = json.loads(sh("dvc", "exp", "show", "--json", "--no-pager"))
    workspace = next(r for r in rows if r["rev"] == "workspace")["data"]["metrics"]
    base = workspace["reports/live/train_base/metrics.json"]["data"]
    assert base["step"] == 10 and base["best_step"] in (0, 5, 10) and base["steps"] == 10
    assert isinstance(base["val_nmse_db"], float) and base["best_val_nmse_db"] <= base["val_nmse_db"]
    assert set(SOURCES) <= set(base) and {"train_loss", "lr", "wall_s", "samples_per_s"} <= set(base)
    for t in TARGETS:
        live = workspace[f"reports/live/transfer_{t}/metrics.json"]["data"]
        assert live["steps"] == 6 and isinstance(live["val_nmse_db"], float)
        assert live[t]["val_nmse_db"] == live["val_nmse_db"]  # one val scenario: its own
        assert live["full_ft"]["steps"] == 6 and "best_val_nmse_db" in live["full_ft"]
        assert live["scratch"]["steps"] == 6 and "best_val_nmse_db" in live["scratch"]
    header = next(csv.reader(pipeline.exp_show.splitlines()))  # (the fixture's `exp show --csv`)
    assert any("best_val_nmse_db" in h for h in header) and any(h.endswith("val_nmse_db") for h in header)

    # the per-step logs: every validation step, in order
    tsv = w / "reports/live/train_base/plots/metrics/val_nmse_db.tsv"
    rows = list(csv.DictReader(tsv.open(), delimiter="\t"))
    assert [r["step"] for r in rows] == ["5", "10"] and list(rows[0]) == ["step", "val_nmse_db"]
    for t in TARGETS:
        for name in ("val_nmse_db", "full_ft/val_nmse_db"):
            tsv = w / f"reports/live/transfer_{t}/plots/metrics/{name}.tsv"
            assert [r["step"] for r in csv.DictReader(tsv.open(), delimiter="\t")] == ["3", "6"]

    # dvclive wrote no dvc.yaml and left the pipeline's byte-identical (also in the commits since)
    root = sh("git", "rev-list", "--max-parents=0", "HEAD").split()[0]
    sh("git", "diff", "--quiet", root, "--", "dvc.yaml")
    written = sorted(str(p.relative_to(w)) for p in w.rglob("dvc.yaml") if ".dvc" not in p.parts)
    assert written == list(PIPELINES)
    assert not list(w.rglob("report.html")) and not list(w.rglob("report.md"))

    # the `plot` stage gathers every training's validation curve into one table for `dvc plots`
    curves = list(csv.DictReader((w / "reports/training_curves.csv").open()))
    assert {(r["stage"], r["scenario"]) for r in curves} == (
        {("base", s) for s in SOURCES} | {(m, t) for t in TARGETS for m in ("lora", "full_ft", "scratch")})
    html = (w / "dvc_plots" / "index.html").read_text()
    assert "reports/training_curves.csv" in html


FRONTIER_COLUMNS = ["scenario", "method", "r", "target_pdps", "trainable_parameters", "gap_to_genie_db",
                    "ci_low_db", "ci_high_db", "delta_vs_full_ft_all_db", "delta_ci_low_db", "delta_ci_high_db",
                    "gain_vs_base_db", "gain_ci_low_db", "gain_ci_high_db", "wall_s"]


def test_the_frontier_runs_every_cell_and_writes_its_table_metrics_and_figures(pipeline):
    w = pipeline.work
    assert ran(pipeline.frontier_first) == ({f"frontier/dvc.yaml:frontier@{t}-{b}" for t in TARGETS for b in (4, "all")}
                                            | {"frontier/dvc.yaml:frontier_report"})
    rows = list(csv.DictReader(io.StringIO(pipeline.frontier_csv_first)))
    assert list(rows[0]) == FRONTIER_COLUMNS
    n_train = {t: json.loads((w / f"reports/pdp_stats/{t}.json").read_text())["n_train"] for t in TARGETS}
    for t in TARGETS:
        got = {(r["method"], r["r"], int(r["target_pdps"])) for r in rows if r["scenario"] == t}
        assert got == ({("base", "", 0)} | {(m, r, n) for n in (4, n_train[t])
                                             for m, r in [("lora", "1"), ("lora", "4"), ("lora", "16"), ("full_ft", ""),
                                                          ("scratch", "")]})
        for r in rows:
            assert float(r["ci_low_db"]) <= float(r["gap_to_genie_db"]) <= float(r["ci_high_db"])
            assert float(r["gap_to_genie_db"]) > 0  # never below the genie
        ft_all = next(r for r in rows if r["scenario"] == t and r["method"] == "full_ft"
                      and int(r["target_pdps"]) == n_train[t])
        assert float(ft_all["delta_vs_full_ft_all_db"]) == 0.0
        base = next(r for r in rows if r["scenario"] == t and r["method"] == "base")
        assert float(base["gain_vs_base_db"]) == 0.0
        for r in rows:  # the gain is the base's gap minus the method's, with its paired interval
            if r["scenario"] == t:
                gain = float(base["gap_to_genie_db"]) - float(r["gap_to_genie_db"])
                assert float(r["gain_vs_base_db"]) == pytest.approx(gain, abs=2e-3)
                assert float(r["gain_ci_low_db"]) <= float(r["gain_vs_base_db"]) <= float(r["gain_ci_high_db"])
    summary = json.loads((w / "reports/frontier.json").read_text())
    assert set(summary) == set(TARGETS)
    for t in TARGETS:
        wide = list(csv.DictReader((w / f"reports/frontier/{t}.csv").open()))
        assert list(wide[0]) == ["target_pdps", "base", "lora_r1", "lora_r4", "lora_r16", "full_ft", "scratch"]
    for png in ("gap_vs_pdps.png", "gap_vs_weights.png", "gain_vs_pdps.png"):
        img = matplotlib.image.imread(w / "reports/figures/frontier" / png)
        assert img.ndim == 3 and img.shape[0] > 300 and img.std() > 0.01, png


def test_a_budget_added_to_the_frontier_runs_only_its_cells(pipeline):
    new = {f"frontier/dvc.yaml:frontier@{t}-8" for t in TARGETS}
    assert ran(pipeline.frontier_second) == new | {"frontier/dvc.yaml:frontier_report"}
    for t in TARGETS:  # the cells already run are not even out of date
        assert f"frontier@{t}-4:" not in pipeline.frontier_status and f"frontier@{t}-all:" not in pipeline.frontier_status
    rows = list(csv.DictReader((pipeline.work / "reports/frontier.csv").open()))
    assert {int(r["target_pdps"]) for r in rows if r["method"] == "scratch"} >= {4, 8}
    # the rows of the cells that were not re-run are unchanged, byte for byte
    first = set(pipeline.frontier_csv_first.splitlines()[1:])
    assert first <= set((pipeline.work / "reports/frontier.csv").read_text().splitlines()[1:])
    assert "could not find" not in pipeline.frontier_plots.lower()
    html = (pipeline.work / "frontier_plots" / "index.html").read_text()
    assert "Adaptation_frontier" in html and '"scenario": "InF_Los", "method": "scratch"' in html


def test_the_link_stage_writes_bler_curves_and_the_10pct_snr_of_every_method(pipeline):
    w = pipeline.work
    assert ran(pipeline.link) == {f"link/dvc.yaml:link@{t}" for t in TARGETS} | {"link/dvc.yaml:link_report"}
    rows = list(csv.DictReader((w / "reports/bler_vs_snr.csv").open()))
    assert list(rows[0]) == ["scenario", "method", "mcs", "snr_db", "bler", "ci_low", "ci_high", "n_blocks",
                             "n_errors"]
    summary = json.loads((w / "reports/link.json").read_text())
    assert set(summary) == set(TARGETS)
    for t in TARGETS:
        assert {(r["method"], r["mcs"]) for r in rows if r["scenario"] == t} == {
            (m, "qpsk_r0.51") for m in ("perfect", "ls", "lora")}
        perfect = summary[t]["perfect"]["qpsk_r0.51"]
        lo, hi = perfect["ci_db"]
        assert lo <= perfect["snr_at_bler_10pct_db"] <= hi
        assert summary[t]["ls"]["qpsk_r0.51"]["loss_vs_perfect_db"] > 0  # LS needs more SNR than perfect CSI
        img = matplotlib.image.imread(w / f"reports/figures/link/bler_{t}.png")
        assert img.ndim == 3 and img.std() > 0.01
