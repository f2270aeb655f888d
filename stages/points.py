"""Stage `points`: every method at the operating points of ``points.snr_db`` (one SNR per scenario).

Writes ``reports/points.json`` (metrics: NMSE, gap to the genie and paired gains over the base,
each with its PDP-bootstrap 95% interval) and ``reports/points.csv`` (one row per scenario and
method); see :mod:`chanest.studies.points`. A scenario with an adapter (``models/lora/<Scenario>``) is
evaluated with it, and with its full fine-tuning / from-scratch references if they were trained.
"""

from __future__ import annotations

from pathlib import Path

from chanest.utils import cli
from chanest import config
from chanest.channel import data
from chanest.estimators.checkpoint import load_estimator
from chanest.estimators.lora import load_adapted
from chanest.estimators.nomp import NOMP
from chanest.evaluation.evaluate import evaluate, scenario_methods, test_set
from chanest.utils.io import write_csv, write_json
from chanest.utils.params import ParamsError, load_params
from chanest.studies.points import points_params, summarise, table
from chanest.training.train import resolve_device
from chanest.estimators.nomp import nomp_config

PROCESSED, BASE, LORA = Path("data/processed"), Path("models/base"), Path("models/lora")
REPORTS = Path("reports")


def main() -> None:
    params = load_params()
    ofdm, norm, ev = config.ofdm(params), config.normalisation(params), config.eval_params(params)
    points = points_params(params)
    device = resolve_device(ev.device)
    base = load_estimator(BASE, device).eval()
    nomp = NOMP(ofdm, nomp_config(params))
    metrics = {}
    sources, targets = config.scenarios(params)
    known = sources + targets
    for scenario in points.snr_db:
        if scenario not in known:
            raise ParamsError(f"params: points.snr_db.{scenario}: not a scenario of scenarios.sources "
                              f"or scenarios.targets ({', '.join(known)})")
    for scenario, snr_db in points.snr_db.items():
        models = {"base": base} | (load_adapted(LORA / scenario, device) if (LORA / scenario).is_dir() else {})
        processed = PROCESSED / ("sources" if scenario in sources else "targets")
        sampler = data.sampler(processed, [scenario], "test", ofdm, norm, device)
        batch = test_set(sampler, (snr_db,), points.n_samples, points.seed)
        methods = scenario_methods(ofdm, processed, scenario, device, nomp, models)
        metrics[scenario] = summarise(evaluate(scenario, methods, batch, ev.batch_size), ev.n_boot, ev.seed)
    write_json(REPORTS / "points.json", metrics)
    write_csv(table(metrics), REPORTS / "points.csv")


if __name__ == "__main__":
    cli.run(main)
