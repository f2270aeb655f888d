"""Stage `evaluate`: NMSE vs SNR of LS, LMMSE (stat, genie), base, LoRA (and full FT) per scenario."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from chanest import cli, config, data
from chanest.baselines import StatLMMSE, genie_lmmse, ls_linear
from chanest.checkpoint import load_estimator
from chanest.evaluate import first_per_snr, method_metrics, per_sample_errors, select, summarise, test_set, wide
from chanest.io import atomic_path, write_json
from chanest.lora import merged_path, read_meta
from chanest.params import from_section, get, load_params
from chanest.train import resolve_device

PROCESSED, BASE, LORA = Path("data/processed"), Path("models/base"), Path("models/lora")
REPORTS = Path("reports")
log = logging.getLogger("stages.evaluate")


def write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False)


def main() -> None:
    params = load_params()
    ofdm, norm = config.ofdm(params), config.normalisation(params)
    ev = from_section(config.EvalParams, get(params, "eval"), "eval")
    sources, targets = config.scenarios(params)
    device = resolve_device(ev.device)

    models = {"base": load_estimator(BASE, device).eval()}
    for t in targets:
        models[f"lora:{t}"] = load_estimator(merged_path(LORA / t).parent, device).eval()
        if (LORA / t / "full_ft").is_dir():
            models[f"full_ft:{t}"] = load_estimator(LORA / t / "full_ft", device).eval()

    rows, cross = [], []
    for scenario in config.all_scenarios(params):
        test_sampler = data.sampler(PROCESSED, [scenario], "test", ofdm, norm, device)
        batch = test_set(test_sampler, ev.snr_db, ev.n_samples, ev.seed)
        cross_mask = first_per_snr(batch, ev.cross_n_samples)
        cross_batch = select(batch, cross_mask)
        stat = StatLMMSE.from_pdps(data.sampler(PROCESSED, [scenario], "train", ofdm, norm, device).pdps,
                                   ofdm, device=device)
        methods = {
            "ls": lambda b: ls_linear(b.h_ls, ofdm),
            "lmmse_stat": lambda b: stat(b.h_ls, b.noise_var),
            "lmmse_genie": lambda b: genie_lmmse(b.h_ls, b.delays_s, b.powers, b.noise_var, ofdm),
        }
        for name, model in models.items():
            if name.startswith("full_ft:") and name != f"full_ft:{scenario}":
                continue  # the full fine-tuning reference is compared on its own scenario only
            methods[name] = lambda b, m=model: m(b.h_ls, b.snr_db)
        for name, estimate in methods.items():
            kind, _, own = name.partition(":")
            off_scenario = bool(own) and own != scenario  # only feeds the cross table: the subset
            err, energy = per_sample_errors(estimate, cross_batch if off_scenario else batch, ev.batch_size)
            if kind in ("base", "lora"):  # the cross-scenario table (every model on the same subset)
                sub = (err, energy) if off_scenario else (err[cross_mask], energy[cross_mask])
                result = summarise(scenario, name, cross_batch, *sub)
                cross.append({"model": name, "scenario": scenario,
                              "nmse_db_mean": round(sum(r["nmse_db"] for r in result) / len(result), 3)})
            if off_scenario:
                continue
            result = summarise(scenario, name, batch, err, energy)
            for r in result:  # an adapted model on its own scenario is the `lora`/`full_ft` row
                r["method"] = kind
            rows += result
        log.info("%s: %s", scenario, {r["method"]: r["nmse_db"] for r in rows if r["scenario"] == scenario and r["snr_db"] == 10.0})

    df = pd.DataFrame(rows)
    metrics = method_metrics(df)
    for t in targets:
        m = metrics[t]
        m["lora_gain_db"] = round(m["base"]["nmse_db_mean"] - m["lora"]["nmse_db_mean"], 3)
        m["trainable_parameters"] = read_meta(LORA / t)["trainable_parameters"]
    write_csv(df, REPORTS / "nmse_vs_snr.csv")
    write_csv(pd.DataFrame(cross), REPORTS / "cross_scenario.csv")
    for scenario in config.all_scenarios(params):
        group = "targets" if scenario in targets else "sources"
        write_csv(wide(df, scenario), REPORTS / "nmse" / group / f"{scenario}.csv")
    write_json(REPORTS / "metrics.json", metrics)


if __name__ == "__main__":
    cli.run(main)
