"""Stage `report`: join the evaluation parts into metrics, NMSE-vs-SNR tables and the cross table.

Reads ``data/eval/base/<Scenario>.npz``, ``data/eval/lora/<Target>.npz`` and
``data/eval/cross/<Target>/<Scenario>.npz``; writes
``reports/metrics.json`` (per scenario and method, with PDP-bootstrap 95% intervals, and the paired
LoRA gain per target), ``reports/nmse_vs_snr.csv``, ``reports/cross_scenario.csv``,
``reports/lora_gain.csv`` (the paired gains with their intervals, for ``dvc plots``) and
``reports/nmse/{sources,targets}/<Scenario>.csv`` (one wide table per scenario). Cheap: no model runs here.
"""

from __future__ import annotations

from pathlib import Path

from chanest.utils import cli
from chanest import config
from chanest.evaluation.report import TestErrors, build_report, gains, wide
from chanest.utils.io import write_csv, write_json
from chanest.utils.params import load_params

EVAL, REPORTS = Path("data/eval"), Path("reports")


def main() -> None:
    params = load_params()
    ev = config.eval_params(params)
    _, targets = config.scenarios(params)
    scenarios = config.all_scenarios(params)
    reference = {s: TestErrors.load(EVAL / "base" / f"{s}.npz") for s in scenarios}
    adapters = {t: {s: TestErrors.load(EVAL / "lora" / f"{t}.npz" if s == t else EVAL / "cross" / t / f"{s}.npz")
                    for s in scenarios} for t in targets}
    report = build_report(reference, adapters, ev.cross_n_samples, ev.n_boot, ev.seed)
    write_csv(report.rows, REPORTS / "nmse_vs_snr.csv")
    write_csv(report.cross, REPORTS / "cross_scenario.csv")
    write_csv(gains(report.metrics), REPORTS / "lora_gain.csv")
    for scenario in scenarios:
        group = "targets" if scenario in targets else "sources"
        write_csv(wide(report.rows, scenario), REPORTS / "nmse" / group / f"{scenario}.csv")
    write_json(REPORTS / "metrics.json", report.metrics)


if __name__ == "__main__":
    cli.run(main)
