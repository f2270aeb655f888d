"""Figures (PNG, matplotlib Agg): PDP statistics, NMSE vs SNR, LoRA gain, cross-scenario, curves."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from chanest.evaluation import methods  # noqa: E402
from chanest.utils.io import atomic_path  # noqa: E402

#: One colour, marker and label per method, from the table of methods: the PNGs use it, and so do
#: the `dvc plots` templates in ``.dvc/plots/`` (checked by ``tests/test_plots_offline.py``).
METHOD_STYLE = {m: methods.style(m) for m in methods.NAMES}


def _save(fig: plt.Figure, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def delay_spread_cdf(spreads_ns: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Empirical CDF of the RMS delay spread (ns) per scenario, log x axis."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, ds in spreads_ns.items():
        x = np.sort(np.maximum(ds, 1e-2))
        ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=name,
                linestyle="-" if name.endswith("_Los") else "--")
    ax.set(xscale="log", xlabel="RMS delay spread (ns)", ylabel="CDF", title="PDP delay spreads")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


def nmse_vs_snr(df: pd.DataFrame, scenario: str, path: str | os.PathLike) -> None:
    """One scenario's NMSE (dB) vs SNR (dB) for every method in ``df`` (long format)."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    sub = df[df.scenario == scenario]
    for method, g in sub.groupby("method", sort=False):
        g = g.sort_values("snr_db")
        style = METHOD_STYLE[methods.method(method).name]
        ax.errorbar(g.snr_db, g.nmse_db, yerr=g.ci_db, capsize=2, markersize=4, **style)
    ax.set(xlabel="SNR (dB)", ylabel="NMSE (dB)", title=scenario)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)


def lora_gain(metrics: dict, targets: list[str], path: str | os.PathLike) -> None:
    """Bar chart of the LoRA gain over the base and the remaining gap to the genie (dB)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(targets))
    gain = [metrics[t].get("lora_gain_db", np.nan) for t in targets]
    gap = [metrics[t].get("lora", {}).get("gap_to_genie_db", np.nan) for t in targets]
    ax.bar(x - 0.2, gain, 0.4, label="LoRA gain over base", color="tab:green")
    ax.bar(x + 0.2, gap, 0.4, label="LoRA gap to genie", color="tab:gray")
    ax.set_xticks(x, targets, rotation=20)
    ax.set(ylabel="dB (mean over SNR grid)", title="LoRA transfer per target")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    _save(fig, path)


def cross_scenario(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Heatmap: model (rows) evaluated on scenario (columns), mean NMSE dB."""
    table = df.pivot(index="model", columns="scenario", values="nmse_db_mean")
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * table.shape[1], 1.0 + 0.5 * table.shape[0]))
    im = ax.imshow(table.values, cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(table.shape[0]), table.index, fontsize=8)
    for (i, j), v in np.ndenumerate(table.values):
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(im, ax=ax, label="mean NMSE (dB)")
    ax.set_title("every model on every scenario")
    _save(fig, path)


def live_metric_path(live_dir: str | os.PathLike, name: str = "val_nmse_db") -> Path:
    """Where dvclive logs metric ``name`` per step: ``<live_dir>/plots/metrics/<name>.tsv``."""
    return Path(live_dir) / "plots" / "metrics" / f"{name}.tsv"


def read_live_metric(live_dir: str | os.PathLike, name: str = "val_nmse_db") -> pd.DataFrame:
    """A dvclive per-step log (see :mod:`chanest.training.live`) as a frame: ``step`` and the value column,
    which is named after the last part of ``name`` (``full_ft/val_nmse_db`` -> ``val_nmse_db``)."""
    return pd.read_csv(live_metric_path(live_dir, name), sep="\t")


def curve_table(live_dir: str | os.PathLike, sources: list[str], targets: list[str]) -> pd.DataFrame:
    """Validation NMSE (dB) by step of every training, as one long table for ``dvc plots``:
    ``stage`` (``base``, ``lora``, ``full_ft``, ``scratch``), ``scenario``, ``step``, ``val_nmse_db``.

    The base is logged per source scenario (``train_base/<S>/val_nmse_db``), each transfer on its
    own target (``transfer_<T>/<T>/val_nmse_db``; its references under ``full_ft/``, ``scratch/``).
    """
    live = Path(live_dir)
    parts = [("base", s, live / "train_base", f"{s}/val_nmse_db") for s in sources]
    for t in targets:
        parts.append(("lora", t, live / f"transfer_{t}", f"{t}/val_nmse_db"))
        parts += [(ref, t, live / f"transfer_{t}", f"{ref}/val_nmse_db") for ref in ("full_ft", "scratch")
                  if live_metric_path(live / f"transfer_{t}", f"{ref}/val_nmse_db").is_file()]
    frames = [read_live_metric(d, name).assign(stage=stage, scenario=s) for stage, s, d, name in parts]
    return pd.concat(frames)[["stage", "scenario", "step", "val_nmse_db"]].reset_index(drop=True)


def training_curves(curves: dict[str, pd.DataFrame], path: str | os.PathLike) -> None:
    """Validation NMSE (dB) vs step for base training and each transfer (frames as
    :func:`read_live_metric` returns them: columns ``step`` and ``val_nmse_db``)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, df in curves.items():
        ax.plot(df.step, df.val_nmse_db, label=name)
    ax.set(xlabel="step", ylabel="val NMSE (dB)", title="training curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)


FRONTIER_STYLE = {
    "base": dict(color="tab:orange", linestyle=":", label="base, zero-shot"),
    "lora_r1": dict(color="#a1d99b", marker="v", label="LoRA r=1"),
    "lora_r4": dict(color="#41ab5d", marker="v", label="LoRA r=4"),
    "lora_r16": dict(color="#005a32", marker="v", label="LoRA r=16"),
    "full_ft": dict(color="tab:red", marker="x", label="full fine-tuning"),
    "scratch": dict(color="tab:purple", marker="D", label="from scratch"),
}


def _frontier_axes(n: int) -> tuple[plt.Figure, np.ndarray]:
    cols = min(n, 2)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False,
                             constrained_layout=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def frontier_vs_pdps(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Gap to the genie (dB, 95% PDP-bootstrap interval) vs target train PDPs, one panel per target,
    one line per method; the base's zero-shot gap as a level (``df``: the frontier table)."""
    scenarios = list(dict.fromkeys(df.scenario))
    fig, axes = _frontier_axes(len(scenarios))
    for ax, scenario in zip(axes, scenarios):
        sub = df[df.scenario == scenario]
        lines = [f"lora_r{int(r)}" if m == "lora" else m for m, r in zip(sub.method, sub.r)]
        for name in dict.fromkeys(lines):
            g = sub[[n == name for n in lines]].sort_values("target_pdps")
            style = FRONTIER_STYLE.get(name, dict(label=name))
            if name == "base":
                ax.axhline(g.gap_to_genie_db.iloc[0], **style)
                ax.axhspan(g.ci_low_db.iloc[0], g.ci_high_db.iloc[0], color=style["color"], alpha=0.1)
                continue
            err = np.vstack([g.gap_to_genie_db - g.ci_low_db, g.ci_high_db - g.gap_to_genie_db])
            ax.errorbar(g.target_pdps, g.gap_to_genie_db, yerr=err, capsize=2, markersize=4, **style)
        ax.set(xscale="log", xlabel="target train PDPs", ylabel="gap to genie LMMSE (dB)", title=scenario)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    _save(fig, path)


def frontier_gain(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """What adaptation buys: the paired gain over the zero-shot base (dB, 95% PDP-bootstrap
    interval; above 0: better than not adapting) vs target train PDPs, one panel per target."""
    scenarios = list(dict.fromkeys(df.scenario))
    fig, axes = _frontier_axes(len(scenarios))
    for ax, scenario in zip(axes, scenarios):
        sub = df[(df.scenario == scenario) & (df.method != "base")]
        lines = [f"lora_r{int(r)}" if m == "lora" else m for m, r in zip(sub.method, sub.r)]
        for name in dict.fromkeys(lines):
            g = sub[[n == name for n in lines]].sort_values("target_pdps")
            style = FRONTIER_STYLE.get(name, dict(label=name))
            err = np.vstack([g.gain_vs_base_db - g.gain_ci_low_db, g.gain_ci_high_db - g.gain_vs_base_db])
            ax.errorbar(g.target_pdps, g.gain_vs_base_db, yerr=err, capsize=2, markersize=4, **style)
        ax.axhline(0.0, color="tab:orange", linestyle=":", label="base, zero-shot")
        ax.set(xscale="log", xlabel="target train PDPs", ylabel="gain over the base (dB)", title=scenario)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    _save(fig, path)


def frontier_vs_weights(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Gap to the genie (dB) vs trainable weights (LoRA r=1..16, full fine-tuning), one line per
    budget of target PDPs; from scratch (as many weights as full fine-tuning) as open markers."""
    scenarios = list(dict.fromkeys(df.scenario))
    fig, axes = _frontier_axes(len(scenarios))
    cmap = plt.get_cmap("viridis")
    for ax, scenario in zip(axes, scenarios):
        sub = df[(df.scenario == scenario) & (df.method != "base")]
        budgets = sorted(set(sub.target_pdps))
        for i, n in enumerate(budgets):
            color = cmap(i / max(1, len(budgets) - 1))
            g = sub[(sub.target_pdps == n) & (sub.method != "scratch")].sort_values("trainable_parameters")
            ax.plot(g.trainable_parameters, g.gap_to_genie_db, marker="o", markersize=4, color=color,
                    label=f"{n} PDPs")
            s = sub[(sub.target_pdps == n) & (sub.method == "scratch")]
            ax.plot(s.trainable_parameters * 1.15, s.gap_to_genie_db, marker="D", markersize=5,
                    linestyle="", markerfacecolor="none", color=color)
        base = df[(df.scenario == scenario) & (df.method == "base")].gap_to_genie_db
        if len(base):
            ax.axhline(base.iloc[0], color="tab:orange", linestyle=":", label="base, zero-shot")
        ax.set(xscale="log", xlabel="trainable weights (open diamonds: from scratch)",
               ylabel="gap to genie LMMSE (dB)", title=scenario)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    _save(fig, path)


LINK_STYLE = {
    "perfect": dict(color="#d62728", linestyle="--", marker="", label="perfect CSI (floor)"),
    **{k: v for k, v in METHOD_STYLE.items() if k != "lmmse_genie"},
    "lmmse_genie": dict(color="#000000", marker=".", linestyle=":", label="genie LMMSE"),
}


def bler_vs_snr(df: pd.DataFrame, crossings: dict, path: str | os.PathLike) -> None:
    """BLER vs SNR (log BLER) of every method, one panel per MCS, the 10% line and each method's
    fitted crossing in the legend (``df``: one target's rows of ``reports/bler_vs_snr.csv``)."""
    mcs_list = list(dict.fromkeys(df.mcs))
    fig, axes = plt.subplots(1, len(mcs_list), figsize=(5.5 * len(mcs_list), 4), squeeze=False,
                             constrained_layout=True)
    for ax, mcs in zip(axes[0], mcs_list):
        sub = df[df.mcs == mcs]
        for method, g in sub.groupby("method", sort=False):
            g = g.sort_values("snr_db")
            style = dict(LINK_STYLE[method if method in LINK_STYLE else methods.method(method).name])
            s10 = crossings.get(method, {}).get(mcs, {})
            if s10:
                style["label"] = f"{style['label']}: {next(iter(s10.values())):.2f} dB"
            y = g.bler.clip(lower=1e-3)
            err = [(y - g.ci_low.clip(lower=1e-3)).clip(lower=0), (g.ci_high - y).clip(lower=0)]
            ax.errorbar(g.snr_db, y, yerr=err, capsize=2, markersize=4, **style)
        ax.axhline(0.1, color="0.6", linewidth=0.8)
        ax.set(yscale="log", ylim=(1e-3, 1.05), xlabel="SNR per data RE (dB)", ylabel="BLER",
               title=f"{df.scenario.iloc[0]}, {mcs}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    _save(fig, path)
