"""The frontier table: every method x budget of a target, as gaps to the genie with paired intervals.

Columns of ``reports/frontier.csv`` (one row per target, method, rank and budget):
scenario, method (``base`` zero-shot, ``lora``, ``full_ft``, ``scratch``), r (LoRA rank), target_pdps
(train PDPs seen; 0 for the base), trainable_parameters, gap_to_genie_db (mean over the SNRs in
:data:`chanest.evaluation.evaluate.GAP_SNR_DB` of the NMSE gap to the genie LMMSE, dB) with ci_low_db /
ci_high_db (95% PDP bootstrap), delta_vs_full_ft_all_db (the gap minus that of full fine-tuning on
all target PDPs, paired; positive = worse) with delta_ci_low_db / delta_ci_high_db, gain_vs_base_db
(the zero-shot base's gap minus the method's, paired; positive = adaptation helped) with
gain_ci_low_db / gain_ci_high_db, and wall_s (the training's seconds in a one-thread worker,
evaluation excluded).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chanest.training import adapt
from chanest.evaluation import methods, stats
from chanest.evaluation.report import GAP_SNR_DB, TestErrors
from chanest.channel.pdp import name_key

#: How close (dB of gap to the genie) to full fine-tuning on all target PDPs counts as "there".
WITHIN_DB = 0.1

#: The order of the methods in the table and figures.
ORDER = ("base", *methods.ADAPTED)


def table(reference: TestErrors, cells: dict[adapt.Budget, TestErrors], n_boot: int, seed: int) -> pd.DataFrame:
    """One target's frontier rows (see :func:`chanest.studies.frontier` module and README for columns).

    reference: `eval_base`'s part (``lmmse_genie``, ``base``) on the target's test set; cells:
    budget -> :func:`run_cell`'s part. Every number is on the same bootstrap replicates over test
    PDPs (seeded as in :func:`chanest.evaluation.evaluate.build_report`), so differences are paired:
    ``delta_vs_full_ft_all_db`` is the method's gap minus full fine-tuning's on all target PDPs
    (positive: worse), with its own interval.
    """
    scenario = reference.scenario
    paired = stats.PairedDB(reference.energy, reference.snr_db, reference.pdp_index, n_boot,
                            np.random.default_rng([seed, name_key(scenario)]))
    genie = paired(reference.errors["lmmse_genie"])

    def gap(err: np.ndarray) -> np.ndarray:  # (1 + n_boot,)
        return paired.mean_over(paired(err) - genie, GAP_SNR_DB)

    entries = [("base", None, 0, 0, 0.0, gap(reference.errors["base"]))]
    for budget, part in cells.items():
        part.check_same_samples(reference, f"frontier {scenario}/{budget}")
        for key, info in part.meta["jobs"].items():
            entries.append((info["method"], info["r"], part.meta["target_pdps"], info["trainable_parameters"],
                            info["wall_s"], gap(part.errors[key])))
    ref_all = next((e[5] for e in entries if e[0] == "full_ft" and "all" in cells
                    and e[2] == cells["all"].meta["target_pdps"]), None)
    base_gap = entries[0][5]
    rows = []
    for method, r, n_pdps, trainable, wall, g in entries:
        value, (lo, hi) = stats.estimate(g)
        row = {"scenario": scenario, "method": method, "r": r, "target_pdps": n_pdps,
               "trainable_parameters": trainable, "gap_to_genie_db": value, "ci_low_db": lo, "ci_high_db": hi}
        if ref_all is not None:
            value, (lo, hi) = stats.estimate(g - ref_all)
            row |= {"delta_vs_full_ft_all_db": value, "delta_ci_low_db": lo, "delta_ci_high_db": hi}
        value, (lo, hi) = stats.estimate(base_gap - g)
        row |= {"gain_vs_base_db": value, "gain_ci_low_db": lo, "gain_ci_high_db": hi}
        rows.append(row | {"wall_s": wall})
    df = pd.DataFrame(rows)
    df["r"] = df["r"].astype("Int64")
    order = df.method.map(ORDER.index)
    df = df.assign(_o=order, _r=df.r.fillna(0)).sort_values(["_o", "_r", "target_pdps"], kind="stable")
    return df.drop(columns=["_o", "_r"]).reset_index(drop=True)


def label(method: str, r: object) -> str:
    """``lora_r4``, ``full_ft``, ...: one name per line of the figures and wide tables."""
    return f"lora_r{int(r)}" if method == "lora" else method


def wide(df: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """One target as ``target_pdps`` + one gap column per method (the base repeated as a level)."""
    sub = df[df.scenario == scenario].copy()
    sub["line"] = [label(m, r) for m, r in zip(sub.method, sub.r)]
    out = sub[sub.method != "base"].pivot(index="target_pdps", columns="line", values="gap_to_genie_db")
    out.insert(0, "base", float(sub.loc[sub.method == "base", "gap_to_genie_db"].iloc[0]))
    return out[["base", *dict.fromkeys(sub.line[sub.method != "base"])]].reset_index().rename_axis(columns=None)


def summary(df: pd.DataFrame) -> dict:
    """Per target: each line's gap at each budget, and the smallest budget within :data:`WITHIN_DB`
    of full fine-tuning on all target PDPs (point estimates; ``null`` if none)."""
    out = {}
    for scenario, sub in df.groupby("scenario", sort=False):
        entry: dict = {"gap_to_genie_db": {}, f"pdps_within_{WITHIN_DB}db_of_full_ft_all": {}}
        for (method, r), rows in sub.groupby(["method", "r"], sort=False, dropna=False):
            name = label(method, r)
            entry["gap_to_genie_db"][name] = {str(n): g for n, g in zip(rows.target_pdps, rows.gap_to_genie_db)}
            if "delta_vs_full_ft_all_db" in rows and method != "base":
                ok = rows[rows.delta_vs_full_ft_all_db <= WITHIN_DB].target_pdps
                entry[f"pdps_within_{WITHIN_DB}db_of_full_ft_all"][name] = int(ok.min()) if len(ok) else None
        out[scenario] = entry
    return out
